#!/usr/bin/env bash
# Make the admission webhook's serving certificate and fill caBundle.
#
#   make-certs.sh [--out DIR] [--namespace NS] [--days N] [--san SAN]... [--opt-in] [--apply]
#
# Writes into DIR (default ./warrant-certs, mode 700):
#   ca.crt, ca.key    a private CA (ECDSA P-256), made once: an existing pair in
#                     DIR is reused, so re-running rotates the serving certificate
#                     while caBundle stays valid
#   tls.crt, tls.key  the serving certificate for warrant-admission.NS.svc
#   secret.yaml       the kubernetes.io/tls Secret warrant-admission-tls
#   webhooks.yaml     webhooks.yaml of this directory with caBundle set
# --apply then runs `kubectl apply` on secret.yaml and webhooks.yaml (in that
# order). --san adds subjectAltNames (e.g. IP:127.0.0.1 for a local test).
# --opt-in reviews only namespaces labelled warrant.dev/verify=enabled (the
# default reviews every namespace not labelled warrant.dev/verify=disabled).
# The server re-reads a rotated certificate by itself; no restart is needed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=./warrant-certs
ns=warrant-system
svc=warrant-admission
days=365
apply=0 opt_in=0
sans=()

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while (($#)); do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --namespace) ns=${2:?--namespace needs a name}; shift 2 ;;
    --days) days=${2:?--days needs a number}; shift 2 ;;
    --san) sans+=("${2:?--san needs a value like DNS:name or IP:addr}"); shift 2 ;;
    --apply) apply=1; shift ;;
    --opt-in) opt_in=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "make-certs.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done
[[ $days =~ ^[1-9][0-9]*$ ]] || { echo "make-certs.sh: --days must be a positive number" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is required" >&2; exit 2; }

umask 077
mkdir -p "$out"
cd "$out"

if [[ -s ca.crt && -s ca.key ]]; then
  echo "reusing the CA in $out (delete ca.crt and ca.key to make a new one)" >&2
else
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout ca.key -out ca.crt -days $((days * 10)) -subj "/CN=warrant admission CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

dns="DNS:$svc,DNS:$svc.$ns,DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local"
for s in "${sans[@]}"; do dns+=",$s"; done
cat > leaf.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$dns
EXT
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout tls.key.new -out tls.csr -subj "/CN=$svc.$ns.svc" 2>/dev/null
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -extfile leaf.ext -out tls.crt.new 2>/dev/null
openssl verify -CAfile ca.crt tls.crt.new >/dev/null
mv tls.key.new tls.key
mv tls.crt.new tls.crt
rm -f tls.csr leaf.ext

b64() { base64 < "$1" | tr -d '\n'; }
cat > secret.yaml <<YAML
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: $svc-tls
  namespace: $ns
  labels:
    app.kubernetes.io/name: $svc
    app.kubernetes.io/part-of: warrant
data:
  tls.crt: $(b64 tls.crt)
  tls.key: $(b64 tls.key)
YAML
ca_bundle=$(b64 ca.crt)
selector='{key: warrant.dev/verify, operator: NotIn, values: ["disabled"]}'
if ((opt_in)); then selector='{key: warrant.dev/verify, operator: In, values: ["enabled"]}'; fi
sed -e "s|caBundle: CA_BUNDLE|caBundle: $ca_bundle|" \
    -e "s|{key: warrant.dev/verify, operator: NotIn, values: \\[\"disabled\"\\]}|$selector|" \
    -e "s|namespace: warrant-system|namespace: $ns|" \
    -e "s|\"kube-system\", \"warrant-system\"|\"kube-system\", \"$ns\"|" \
    "$here/webhooks.yaml" > webhooks.yaml
if grep -q CA_BUNDLE webhooks.yaml; then
  echo "make-certs.sh: caBundle was not filled in webhooks.yaml" >&2
  exit 1
fi

echo "wrote $out/{ca.crt,ca.key,tls.crt,tls.key,secret.yaml,webhooks.yaml}" >&2
if ((apply)); then
  kubectl apply -f secret.yaml
  kubectl apply -f webhooks.yaml
else
  echo "next: kubectl apply -f $out/secret.yaml, wait for the Deployment to be ready, then kubectl apply -f $out/webhooks.yaml" >&2
fi

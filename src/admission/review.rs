//! The `admission.k8s.io/v1` wire format, where a workload keeps its images, and
//! the JSONPatch that pins them.
//!
//! Only the fields warrant reads or writes are typed; the object under review stays
//! an untyped [`serde_json::Value`] because its images sit at different depths per
//! kind (a Pod's `spec`, a Deployment's `spec.template.spec`, a CronJob's
//! `spec.jobTemplate.spec.template.spec`), and because a mutating webhook sees it
//! before the API server has validated its schema: nothing about its shape is
//! assumed, and a surprise is a denial, never a panic.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only API version served (`admissionReviewVersions: ["v1"]`).
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The `kind` of a review, both ways.
pub const KIND: &str = "AdmissionReview";

/// An `AdmissionReview` as the API server sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRequest {
    /// Must be [`API_VERSION`].
    pub api_version: String,
    /// Must be [`KIND`].
    pub kind: String,
    /// The request; absent only in malformed reviews.
    pub request: Option<Request>,
}

/// `AdmissionRequest`: the fields warrant uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Identifies this call; the response must echo it.
    pub uid: String,
    /// The fully-qualified kind of `object` (after `matchPolicy: Equivalent`
    /// conversion, the kind the webhook registered for).
    pub kind: GroupVersionKind,
    /// Set for subresource requests (`ephemeralcontainers` on a Pod).
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    #[serde(default)]
    pub operation: Option<String>,
    /// The namespace of the object, for messages.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The object's name (may be empty on CREATE with `generateName`).
    #[serde(default)]
    pub name: Option<String>,
    /// The object as it would be stored (absent on DELETE).
    #[serde(default)]
    pub object: Option<Value>,
    /// The object as stored before an UPDATE.
    #[serde(default)]
    pub old_object: Option<Value>,
    /// The request will not be persisted. Reviewing has no side effects
    /// (`sideEffects: None`), so the answer is the same; it is only logged.
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// `metav1.GroupVersionKind`.
#[derive(Debug, Clone, Deserialize)]
pub struct GroupVersionKind {
    /// API group, `""` for the core group.
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    pub kind: String,
}

/// An `AdmissionReview` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    /// [`API_VERSION`].
    pub api_version: &'static str,
    /// [`KIND`].
    pub kind: &'static str,
    /// The answer.
    pub response: Response,
}

/// `AdmissionResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The request's uid, echoed.
    pub uid: String,
    /// Admit or not.
    pub allowed: bool,
    /// Why not (shown by kubectl as the error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `JSONPatch` when `patch` is present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// The base64 of a JSON array of RFC 6902 operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Shown to the user by kubectl as `Warning: ...`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `metav1.Status`, the part that carries a denial.
#[derive(Debug, Serialize)]
pub struct Status {
    /// HTTP-like code: 403 for a denial.
    pub code: u16,
    /// `Forbidden`.
    pub reason: &'static str,
    /// Every untrusted image and why.
    pub message: String,
}

impl ReviewResponse {
    /// Wrap a response.
    pub fn new(response: Response) -> Self {
        Self {
            api_version: API_VERSION,
            kind: KIND,
            response,
        }
    }
}

/// Which list of a pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerList {
    /// `containers`.
    Containers,
    /// `initContainers`.
    InitContainers,
    /// `ephemeralContainers` (added to running Pods by `kubectl debug`).
    EphemeralContainers,
}

impl ContainerList {
    const ALL: [ContainerList; 3] = [
        ContainerList::Containers,
        ContainerList::InitContainers,
        ContainerList::EphemeralContainers,
    ];

    /// The field name in a pod spec.
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::InitContainers => "initContainers",
            ContainerList::EphemeralContainers => "ephemeralContainers",
        }
    }
}

/// One image field of the object under review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSite {
    /// JSON pointer (RFC 6901) of the `image` string, for the patch.
    pub pointer: String,
    /// The container's name, for messages.
    pub container: String,
    /// Which list it is in.
    pub list: ContainerList,
    /// The image exactly as written.
    pub image: String,
}

impl ImageSite {
    /// `initContainers[0] "setup"`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {:?}", self.list.field(), self.container)
    }
}

/// The object under review has a shape warrant cannot read images from safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// A container list is not a list, or a container is not an object.
    #[error("{pointer} is not a {expected}")]
    NotA {
        /// Where.
        pointer: String,
        /// `list` or `container object`.
        expected: &'static str,
    },
    /// An `image` that is not a string.
    #[error("{pointer} is not a string")]
    ImageNotAString {
        /// Where.
        pointer: String,
    },
}

/// Where a kind keeps its pod spec: the JSON pointer of the spec, or `None` for a
/// kind that runs no containers. The group must match too: a custom resource named
/// `Deployment` in another group is not `apps/v1` Deployment.
pub fn pod_spec_pointer(kind: &GroupVersionKind) -> Option<&'static str> {
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("", "Pod") => Some("/spec"),
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Some("/spec/template/spec"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// Every image of `object` (of kind `kind`), in container, init container,
/// ephemeral container order. Kinds without a pod spec, and objects whose spec is
/// absent, have none; an `image` that is absent (a template may leave it to a
/// later mutation, which the validating webhook then sees) is skipped.
pub fn images(kind: &GroupVersionKind, object: &Value) -> Result<Vec<ImageSite>, ShapeError> {
    let Some(spec_ptr) = pod_spec_pointer(kind) else {
        return Ok(Vec::new());
    };
    let Some(spec) = object.pointer(spec_ptr) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for list in ContainerList::ALL {
        let list_ptr = format!("{spec_ptr}/{}", list.field());
        let containers = match spec.get(list.field()) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(ShapeError::NotA {
                    pointer: list_ptr,
                    expected: "list",
                });
            }
        };
        for (i, c) in containers.iter().enumerate() {
            let pointer = format!("{list_ptr}/{i}");
            let Value::Object(c) = c else {
                return Err(ShapeError::NotA {
                    pointer,
                    expected: "container object",
                });
            };
            let image = match c.get("image") {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(ShapeError::ImageNotAString {
                        pointer: format!("{pointer}/image"),
                    });
                }
            };
            out.push(ImageSite {
                pointer: format!("{pointer}/image"),
                container: c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                list,
                image,
            });
        }
    }
    Ok(out)
}

/// An RFC 6902 JSON Patch that replaces image strings.
#[derive(Debug, Default)]
pub struct Patch {
    ops: Vec<Value>,
}

impl Patch {
    /// Replace the string at `pointer` with `value`. A `test` of the old value
    /// comes first, so the patch cannot apply to an object that changed since it
    /// was reviewed (the API server applies it to the same object; this makes that
    /// a checked fact rather than an assumption).
    pub fn replace_image(&mut self, pointer: &str, old: &str, value: &str) {
        self.ops
            .push(serde_json::json!({"op": "test", "path": pointer, "value": old}));
        self.ops
            .push(serde_json::json!({"op": "replace", "path": pointer, "value": value}));
    }

    /// True when there is nothing to patch.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations, as a JSON array.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.ops).unwrap_or_else(|_| b"[]".to_vec())
    }

    /// The base64 (standard alphabet, padded) the `patch` field carries.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.to_json())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn gvk(group: &str, kind: &str) -> GroupVersionKind {
        GroupVersionKind {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
        }
    }

    fn spec() -> Value {
        json!({
            "containers": [{"name": "app", "image": "a:1"}, {"name": "side", "image": "b:2"}],
            "initContainers": [{"name": "setup", "image": "c:3"}],
            "ephemeralContainers": [{"name": "debug", "image": "d:4"}]
        })
    }

    #[test]
    fn every_pod_bearing_kind_yields_its_images_with_pointers() {
        let cases = [
            ("", "Pod", json!({"spec": spec()}), "/spec"),
            (
                "apps",
                "Deployment",
                json!({"spec": {"template": {"spec": spec()}}}),
                "/spec/template/spec",
            ),
            (
                "apps",
                "ReplicaSet",
                json!({"spec": {"template": {"spec": spec()}}}),
                "/spec/template/spec",
            ),
            (
                "apps",
                "StatefulSet",
                json!({"spec": {"template": {"spec": spec()}}}),
                "/spec/template/spec",
            ),
            (
                "apps",
                "DaemonSet",
                json!({"spec": {"template": {"spec": spec()}}}),
                "/spec/template/spec",
            ),
            (
                "batch",
                "Job",
                json!({"spec": {"template": {"spec": spec()}}}),
                "/spec/template/spec",
            ),
            (
                "batch",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec()}}}}}),
                "/spec/jobTemplate/spec/template/spec",
            ),
            (
                "",
                "ReplicationController",
                json!({"spec": {"template": {"spec": spec()}}}),
                "/spec/template/spec",
            ),
        ];
        for (group, kind, object, base) in cases {
            let sites = images(&gvk(group, kind), &object).expect(kind);
            let got: Vec<(&str, &str, &str)> = sites
                .iter()
                .map(|s| (s.pointer.as_str(), s.container.as_str(), s.image.as_str()))
                .collect();
            let want = [
                (format!("{base}/containers/0/image"), "app", "a:1"),
                (format!("{base}/containers/1/image"), "side", "b:2"),
                (format!("{base}/initContainers/0/image"), "setup", "c:3"),
                (
                    format!("{base}/ephemeralContainers/0/image"),
                    "debug",
                    "d:4",
                ),
            ];
            let want: Vec<(&str, &str, &str)> =
                want.iter().map(|(p, c, i)| (p.as_str(), *c, *i)).collect();
            assert_eq!(got, want, "{kind}");
            // Every pointer resolves to the image in the object itself.
            for s in &sites {
                assert_eq!(object.pointer(&s.pointer), Some(&json!(s.image)));
            }
        }
    }

    #[test]
    fn kinds_without_pods_and_lookalike_groups_have_no_images() {
        let obj = json!({"spec": {"template": {"spec": spec()}}, "data": {"image": "x"}});
        assert!(images(&gvk("", "ConfigMap"), &obj).unwrap().is_empty());
        assert!(
            images(&gvk("example.com", "Deployment"), &obj)
                .unwrap()
                .is_empty()
        );
        assert!(images(&gvk("", "Pod"), &json!({})).unwrap().is_empty());
        assert!(
            images(&gvk("", "Pod"), &json!({"spec": {"containers": null}}))
                .unwrap()
                .is_empty()
        );
        // A container without an image (left to a later mutation) is skipped.
        let no_image = json!({"spec": {"containers": [{"name": "x"}]}});
        assert!(images(&gvk("", "Pod"), &no_image).unwrap().is_empty());
    }

    #[test]
    fn odd_shapes_are_errors_not_panics() {
        let bad = [
            json!({"spec": {"containers": {"name": "x"}}}),
            json!({"spec": {"containers": ["x"]}}),
            json!({"spec": {"initContainers": [{"image": 5}]}}),
            json!({"spec": {"ephemeralContainers": "s"}}),
        ];
        for b in bad {
            assert!(images(&gvk("", "Pod"), &b).is_err(), "{b}");
        }
        // A spec that is not an object has no lists to read.
        assert!(
            images(&gvk("", "Pod"), &json!({"spec": 3}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_patch_tests_then_replaces_and_is_base64() {
        use base64::Engine as _;
        let mut p = Patch::default();
        assert!(p.is_empty());
        p.replace_image("/spec/containers/0/image", "a:1", "h/a:1@sha256:00");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(p.to_base64())
            .unwrap();
        let ops: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "test", "path": "/spec/containers/0/image", "value": "a:1"},
                {"op": "replace", "path": "/spec/containers/0/image", "value": "h/a:1@sha256:00"}
            ])
        );
    }

    #[test]
    fn responses_serialize_as_the_api_server_expects() {
        let r = ReviewResponse::new(Response {
            uid: "u-1".into(),
            allowed: false,
            status: Some(Status {
                code: 403,
                reason: "Forbidden",
                message: "no".into(),
            }),
            patch_type: None,
            patch: None,
            warnings: Vec::new(),
        });
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": "u-1", "allowed": false,
                             "status": {"code": 403, "reason": "Forbidden", "message": "no"}}
            })
        );
    }
}

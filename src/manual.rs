//! # The warrant manual: threat model
//!
//! warrant assumes the registry (or the disk holding an OCI layout) is hostile: it
//! may serve any bytes, old or new, for any name. Trust comes only from keys: the
//! root keys (offline), the targets keys (people or CI that vouch for images), and
//! the publisher key (CI; signs snapshot and timestamp). Each TUF attack, the code
//! that stops it, and the test that proves it:
//!
//! | attack | what the attacker does | stopped by | proven by |
//! |---|---|---|---|
//! | arbitrary image | moves a tag to another manifest | [`crate::ops::verify`] compares the served digest and size with the signed target | `tests/layout_cli.rs::tag_moved_to_another_manifest_is_rejected` |
//! | forged metadata | edits targets and fixes every OCI digest | snapshot's hash of targets ([`crate::tuf::trusted::check_meta_hashes`]); signatures on the canonical bytes *as received* ([`crate::tuf::verify::Untrusted::verify`]) | `forged_targets_with_fixed_up_oci_digests_is_rejected`, `forged_snapshot_without_the_publisher_key_is_rejected` |
//! | rollback | serves an older, validly signed `warrant.tuf` | version floors from the trusted cache: [`crate::tuf::trusted::TrustedSet::update_timestamp`] (5.4.3), `update_snapshot` (5.5.5), `update_targets` (5.6.4) | `replaying_an_older_warrant_tuf_is_rejected_with_the_cache_intact`, `tuf::trusted::tests::*rollback*` |
//! | freeze | keeps serving metadata that has expired | expiry of every role against the clock at each verify, also on the warm path ([`crate::tuf::client::Updater::load_cached`]) | `expired_timestamp_is_rejected` (with faketime), `expired_*` unit tests |
//! | mix-and-match | combines files from different versions | timestamp pins snapshot by hash, length and version; snapshot pins targets ([`crate::tuf::trusted::TrustedSet::check_final_snapshot`]) | `snapshot_not_matching_timestamp_hash_is_mix_and_match`, `snapshot_version_must_be_what_timestamp_names` |
//! | endless data | serves huge or never-ending files | every read is capped by the caller: meta lengths, [`crate::tuf::client::Limits`], the 4 MiB manifest cap, and the store stops reading past the cap | `oversized_metadata_is_rejected_without_reading_it_all`, store unit tests |
//! | fast-forward | an attacker who stole the publisher key pushes versions very high | after the key is rotated in root, the cached timestamp/snapshot no longer verify and are not used as floors (5.3.11) ([`crate::tuf::client::Updater`]) | root rotation tests (issue #6) |
//! | key compromise below threshold | one of several keys is stolen | thresholds count *distinct* keys; duplicate signatures, duplicate key ids and one key under two ids count once ([`crate::tuf::verify::check_threshold`]) | `tuf::verify::tests::*` |
//! | wrong role | serves a validly signed file under another role's name | `_type` checked before a typed value is built | `wrong_type_is_rejected_even_when_signed` |
//! | delegation confusion | a role reached through a second delegator carries only the first's signatures | re-checked against each delegator ([`crate::tuf::trusted::TrustedSet::recheck_delegated`]; python-tuf and go-tuf skip this) | `a_role_reached_through_a_second_delegator_must_satisfy_its_keys` |
//! | trust on first use | a verifier's first contact is with a forged repository | no TOFU: the first root comes from a pin (`--root` file or `--root-keyid`); without one, verify exits 2 | `verify_without_cache_or_pin_is_a_usage_error`, `root_keyid_pin_accepts_the_right_keys_and_rejects_others` |
//! | memory amplification (issue #11 item 6) | lists ~17,000 extra `N.targets.json` layers in `warrant.tuf`, all of which a verify used to fetch at once | the prefetch takes only what the update needs (newer roots up to `max_root_rotations`, timestamp, the highest-numbered snapshot and targets; `files_to_prefetch` in [`crate::ops::trust`]), at most [`crate::store::registry::PREFETCH_CONCURRENCY`] requests at once within [`crate::store::registry::PREFETCH_BUDGET`] bytes | `tests/bounds_cli.rs::thousands_of_extra_layers_do_not_amplify_memory` |
//! | stalling or endless token service (item 7) | its 401 names a token service that drips a byte a second or streams gigabytes | our own bearer-token flow on the read path (`store/registry/token.rs`): the same capped, deadline-bound requests as every read, answers capped at [`crate::store::registry::MAX_TOKEN_RESPONSE`] | `dripping_token_endpoint_hits_the_deadline`, `endless_token_body_is_capped` |
//! | slow retries (item 8) | answers every request only after its retries, so `--timeout` multiplies | `--deadline` ([`crate::ops::Network::deadline`]): one budget of registry time per command; each attempt gets `min(timeout, left)`, and running out is exit 3 naming the step (`store/registry/deadline.rs`, `transport.rs`) | `retries_do_not_outlive_the_deadline` |
//! | credential theft through the realm (item 9) | a 401 names a token service on another host, over plain HTTP | credentials go only to an HTTPS realm, or plain HTTP on the registry's own loopback / `--insecure-registry` host; otherwise the token is asked for anonymously (`credentials_withheld` in `store/registry/token.rs`; writes, through the same token flow, then go anonymous too) | `credentials_are_not_sent_to_a_foreign_plain_http_realm`, `credentials_go_to_a_plain_http_realm_on_the_same_loopback_host`, `token::tests` |
//! | hanging or flooding credential helper (item 10) | the `docker-credential-*` program the docker config names never answers, or answers without end | [`crate::store::auth`]: 10 s (or the shorter deadline) then killed, stdout capped at [`crate::store::auth::MAX_HELPER_OUTPUT`], stderr drained; the error names the helper and how to check it | `hanging_credential_helper_times_out`, `flooding_credential_helper_is_capped` |
//! | one stolen root key, fresh root (issue #11 item 1) | a thief of one key of a 2-of-2 root publishes a new repository whose root lists only that key with threshold 1 | a key-id or CA pin carries its own threshold (`--root-threshold`, `root-threshold`; default every pinned id, 1 for a CA), counted over distinct keys whatever the root declares ([`crate::ops::anchor::KeyIdPin`], [`crate::ops::anchor::CaPin`]) | `tests/anchors.rs::stolen_root_key_cannot_pass_a_two_key_pin_with_a_fresh_root` |
//! | pin ignored by a warm cache (item 2) | a host trusted a repository once; a policy tightened later, or a pin of another repository's keys, was silently ignored | every pin is checked against the cached root: it satisfies the key-id/CA pin, or its chain descends from the pinned root (walked through the store's roots); recorded per pin and root so the warm path stays local ([`crate::ops::anchor`]) | `tests/anchors.rs::a_pin_given_to_a_warm_cache_is_checked_not_ignored` |
//! | one key under two spellings (item 3) | lists one P-256 key as `ecdsa` and as `ecdsa-sha2-nistp256`, or with other PEM whitespace, to count it twice | keys are told apart by their decoded public key ([`crate::crypto::PublicKey::identity`]) in every threshold and pin count | `tuf::verify::tests::same_p256_key_under_two_spellings_counts_once` |
//! | unusable X.509 chains (item 4) | certifies root keys through a CA whose path length, key usage or critical extensions forbid it | [`crate::crypto::x509::verify_chain`] checks basicConstraints, pathLenConstraint, keyCertSign/digitalSignature key usage and refuses unknown critical extensions | `crypto::x509::tests::{path_length_constraint_of_the_ca_is_enforced, issuer_whose_key_usage_forbids_cert_signing_is_refused, leaf_whose_key_usage_forbids_signing_is_refused, unknown_critical_extension_anywhere_in_the_chain_is_refused}` |
//! | policy by spelling (item 5) | `docker.io/alpine` vs `library/alpine` got different policy entries and caches | one parser normalizes as docker does, checked against oci-client's parser ([`crate::store::ImageRef::parse`]) | `store::reference::tests::docker_hub_spellings_are_one_image_and_agree_with_oci_client` |
//! | blocking or huge local inputs (item 12) | a FIFO as `--root`, `--passphrase-file`, `key import` or policy file; a 100,000-character key name | one bounded, non-blocking, regular-file-only read ([`crate::fsutil`]); key names are 1–64 of `[A-Za-z0-9._-]` and unique ([`crate::crypto::keystore::check_name`]); a short key-id pin is refused when read | `tests/local_inputs.rs::*`, `tests/anchors.rs::short_key_id_pins_are_refused_when_read`, `plugins_cli::containerd::policy_fifo_blocks_with_the_policy_as_the_reason` |
//! | revoked signer (issue #12) | a compromised delegated key keeps vouching for what it signed | `key revoke` needs only the delegator's key; the role's old version no longer meets the new delegation, so its targets are untrusted until the remaining holders re-sign after reviewing every target ([`crate::ops::rotate`], [`crate::tuf::client::Updater::unverifiable`]) | `tests/team_cli.rs::revoke_needs_only_the_delegators_key_and_untrusts_until_re_signed` |
//! | half-published delegation (issue #12) | a delegator version naming a role the snapshot lacks made every verify through it fail | a delegator version enters the snapshot only with its new roles' first versions; removed roles keep their snapshot entry (spec 5.5.5) ([`crate::ops::edit::commit`]) | `tests/team_cli.rs::{team_walkthrough_from_separate_homes_has_no_dead_end, delegation_added_without_the_publisher_key_is_published_whole_by_refresh}` |
//! | swapped public key (issue #15) | replaces the key a new signer hands the admin (in an email, a chat, or the key request in the registry, re-signed with its own key) | a requested key is taken only when the fingerprint the admin types, read out by the requester over another channel, is that of the key in the request: 64 bits of its key id, a second preimage out of reach ([`crate::ops::request::take`], [`crate::crypto::fingerprint`]); a request must be signed by the key it encloses, for this repository, unexpired ([`crate::ops::request::document::check`]); requests live under their own tag, `warrant.requests`, which no verifying command opens ([`crate::store::ArtifactKind`]) | `tests/key_requests_cli.rs::{a_key_swapped_in_the_registry_is_refused_on_fingerprint_mismatch, invalid_and_expired_requests_are_listed_as_such_and_never_used, verifiers_never_read_the_requests_tag}`, `ops::request::document::tests::*` |
//! | cache tampering / races | concurrent verifies, a corrupted cache | the cache is locked and written atomically; cached root, timestamp and snapshot bytes are re-verified at every load; targets roles through their index (next rows) | `cache::tests`, `replaying_...cache_intact` |
//! | stale target index (issue #13) | the metadata under a verifier's local target index changes: a tag re-signed, a targets key rotated, the role expires, the cached role file rewritten | [`crate::tuf::trusted::TrustedSet::accept_index`] takes an index only when its recorded version (and length, sha256 when snapshot records them) is what the trusted snapshot names *now*, its key fingerprint ([`crate::tuf::index::authority_fingerprint`]) is what the delegator grants *now*, its stamp is the cached role file's, and the role's expiry is in the future; otherwise the role is verified in full and the index rebuilt | `tuf::client::index_tests::target_index_is_not_trusted_after_the_role_changed`, `..._after_targets_key_rotation`, `..._after_the_cached_role_file_changed`, `expired_role_behind_an_index_is_rejected`, `tests/scale_cli.rs::target_index_is_not_trusted_after_a_tag_is_re_signed` |
//! | corrupted target index (issue #13) | a torn write, bit rot, truncation, entries spliced from another index, digests edited in place | the index header is sealed by its sha256 and every entry carries a tag over (seal, position, entry) checked as a lookup reads it ([`crate::tuf::index`]); any failure falls back to full verification of the cached role and rewrites the index | `corrupted_target_index_is_rebuilt_not_trusted` (unit and `tests/scale_cli.rs`), `truncated_target_index_is_rebuilt_not_trusted`, `tuf::index::tests::a_flipped_byte_anywhere_is_detected`, `entries_spliced_from_another_index_do_not_verify` |
//!
//! ## A registry that fails, and a process that dies (issue #17)
//!
//! Publishing is *blobs first, manifest last*, so a failure before the manifest PUT
//! leaves the previous `warrant.tuf` in force. Three things a failing registry does
//! that this alone does not cover:
//!
//! * **Lost write**: it answers the manifest PUT with 201 and stores nothing (a
//!   broken cache or proxy in front of it). The registry store HEADs the tag after
//!   the PUT; a tag still at the manifest we built on is a lost write, retried
//!   from a fresh read like a conflict (`store/registry/publish.rs`). Without this,
//!   `delegation add` reported "published" for a change no verifier would ever see.
//! * **Unconfirmed write**: it acknowledges the manifest and then stops answering.
//!   Nobody can know whether the write stuck; the command exits 3 saying
//!   "published ..., but the change is not confirmed" ([`crate::ops::OpError::Unconfirmed`])
//!   instead of claiming either outcome. Re-running converges.
//! * **Inconsistent answers**: a `Docker-Content-Digest` that does not match the
//!   bytes is an integrity failure (exit 1) for publishing commands as for verify:
//!   nothing is built on bytes the registry itself disowns.
//!
//! A verify that fails part-way keeps the roles it already verified (spec 5.3.8,
//! 5.4.5, 5.5.7: a newer timestamp seen once stays the rollback floor) but not the
//! manifest digest, so the next verify runs a full update rather than answering
//! from a half-updated cache. Every write (layout, cache) is temp file + fsync +
//! rename, so a SIGKILL at any point leaves the old or the new file.
//!
//! Proven by `tests/faults_cli.rs` (a loopback proxy injecting 5xx, 429, resets,
//! truncated and slow bodies, wrong digests and lost PUTs at every request index of
//! `sign`, `delegation add`, `key rotate --role root`, `approve` and `verify`, once
//! and persistently; sampled in `make test`, exhaustive in `make faults`) and
//! `tests/crash_cli.rs` (SIGKILL of a layout sign and of a verify's cache write).
//! The parsers of every untrusted input (envelopes and the trust state machine,
//! metadata types, the artifact manifest, image references, policies,
//! AdmissionReview bodies, the containerd verifier's stdin) are fuzzed under
//! `fuzz/` (`make fuzz`).
//! | hostile Notary server during migration (issue #16) | while a DCT user imports, the server serves altered, oversized, older or foreign metadata | `warrant import notary` verifies the Notary repository in its own dialect module before anything is written ([`crate::import::notary::verify`]): anchored on the trust dir's root or `--root` and walking every root rotation (`N.root.json`, each signed by the one before), thresholds over distinct keys whose ids must hash their key objects, hashes and lengths from the parent, expiry, versions not below the trust dir's; every read capped; the dialect never reaches warrant's verify path; the repository is built in a staging layout and published once ([`crate::import::notary::stage`]), so a failure leaves no half-imported `warrant.tuf` | `tests/notary_import.rs::{root_of_another_notary_repository_is_refused_and_nothing_is_published, forged_root_v2_not_signed_by_root_v1_is_refused_and_nothing_is_published, registry_failure_during_the_import_publishes_nothing_and_a_rerun_imports, targets_altered_by_the_server_is_refused_and_nothing_is_published, targets_longer_than_the_snapshot_lists_is_refused_as_untrusted, server_targets_older_than_the_trust_dir_saw_is_refused_as_rollback}`, `import::notary::dialect::tests` |
//!
//! ## The admission webhook: one Pod cannot stall everyone (issue #11 item 11)
//!
//! A workload is an untrusted input to `warrant serve admission`, and so is a TCP
//! client. A Pod naming 5,000 distinct unsigned tags used to start 5,000 registry
//! checks that queued ahead of every later review (a signed, uncached image was
//! denied at the deadline), and 1,100 slow clients held all 1,024 connection
//! slots, so `/healthz` and real reviews timed out.
//!
//! * **Image cap**: more than `--max-images-per-review` (64) distinct images is a
//!   denial before any registry request ([`crate::admission::handler::Reviewer`],
//!   [`crate::admission::ReviewLimits`]). Test:
//!   `tests/admission/limits.rs::one_review_with_thousands_of_images_cannot_starve_others`.
//! * **Pool share and budget**: a review waits on at most
//!   `--verifications-per-review` (4) of the `--max-verifications` (16) at a time,
//!   within a budget of `--deadline-ms` shortened to 80% of the API server's
//!   `?timeout=` ([`crate::admission::budget::budget`]); after it, unstarted
//!   lookups never start and queued verifications nobody waits for are dropped
//!   ([`crate::admission::VerifyCache`]). Tests:
//!   `admission::handler::tests::one_review_cannot_take_the_whole_verification_pool`,
//!   `admission::cache::tests::a_queued_verification_nobody_waits_for_any_more_is_dropped_unstarted`.
//! * **Connections** ([`crate::admission::conn`]): a per-address cap
//!   (`--max-connections-per-ip`), a header timeout, and, above 75% of
//!   `--max-connections`, closing every connection not being answered after
//!   `--pressure-timeout-ms`. Tests: `slow_clients_cannot_starve_healthz`,
//!   `per_ip_connection_limit_sheds_the_flooder`.
//! * **Reachability**: `plugin-manifest/kubernetes/networkpolicy.yaml` admits only
//!   the API server (its source depends on the distribution: edit it first).
//!
//! Not defended: many reviews at once, each within its limits, still share the
//! pool (four concurrent floods of 64 images fill 16 slots); a verification that
//! has started runs to its end (up to the network timeout) even when its review
//! has answered. The API server's own rate limits and the NetworkPolicy bound
//! who can send reviews.
//!
//! ## What is *not* defended
//!
//! * A stolen publisher key lets an attacker re-sign *snapshot and timestamp* — it
//!   cannot add an image, since targets are signed by other keys. Freshness then
//!   rests on the attacker; rotate the publisher key in root.
//! * The verified target index (issue #13) is checked for corruption, not against
//!   forgery: its checks are unkeyed hashes, so someone who can write the
//!   verifier's `$WARRANT_HOME/trust/` can write an index with valid checks — as
//!   they can replace the cached root there (or the `warrant` binary). Everything
//!   fetched from a registry is still verified in full before an index is built.
//! * Key requests (issue #15) can be deleted or withheld by the registry (a denial
//!   of service: the requester asks again, or hands over a PEM), and the
//!   fingerprint proves only what the out-of-band channel proves: that the voice
//!   reading it is the colleague's. Publishing a request needs push access to the
//!   repository, as signing does.
//! * Layer blobs are not checked by warrant: the manifest digest pins them, and every
//!   OCI client (docker, containerd, skopeo) checks layers against it when pulling.
//! * Secrets: passphrases come from a prompt, a file or `WARRANT_PASSPHRASE`; they are
//!   held in zeroizing buffers and never logged. Private keys are encrypted at rest
//!   (PKCS#8, PBES2 with scrypt log₂N=15, r=8, p=1, AES-256-CBC), files mode 0600.

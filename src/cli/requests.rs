//! `warrant key request` and `warrant key requests`, and the `--request` /
//! `--fingerprint` flags that take a requested key (issue #15).

use super::output::Printer;
use crate::ops::request::{self, NewRequest, TakenKey};
use crate::ops::{Context, OpError};

/// `warrant key request REPO --role ROLE --key ID`
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// The repository whose administrator you ask.
    pub repo: String,
    /// The role you ask to sign for.
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// Your key (id, prefix or name; a file or token key): its public half goes in
    /// the request, and it signs the request to prove you hold it.
    #[arg(long, value_name = "ID")]
    pub key: String,
    /// A note for the administrator (who you are, which machine), at most 280
    /// characters.
    #[arg(long, default_value = "", value_name = "TEXT")]
    pub note: String,
    /// How long the request stays open (e.g. 7d, 12h; at most 30d).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub expires: String,
}

pub fn request_run(a: RequestArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    if a.role == "root" {
        out.warn(
            "you are asking to become a ROOT key holder: root keys decide which keys \
             the repository trusts for every role; ask for a delegated role (e.g. \
             --role dev) unless you are meant to hold root",
        );
    }
    let new = NewRequest {
        role: a.role,
        key: a.key,
        note: a.note,
        lifetime: crate::ops::parse_duration(&a.expires)?,
    };
    let published = request::publish(ctx, &super::location(&a.repo)?, &new)?;
    if let Some(what) = &published.replaced_foreign {
        out.warn(&format!(
            "{}:warrant.requests held something that was not key requests ({what}); \
             it is replaced (nothing trusts that tag)",
            published.repository
        ));
    }
    for old in &published.replaced {
        out.note(&format!(
            "replaced your earlier request {old} (one open request per key and role)"
        ));
    }
    out.report(&published);
    Ok(0)
}

/// `warrant key requests REPO [--reject ID[,ID...]] [--clear]`
#[derive(Debug, clap::Args)]
pub struct RequestsArgs {
    /// The repository.
    pub repo: String,
    /// Drop these requests (valid or not, or layers listed as unreadable) instead
    /// of listing: repeatable, or comma-separated.
    #[arg(
        long,
        value_name = "ID",
        value_delimiter = ',',
        conflicts_with = "clear"
    )]
    pub reject: Vec<String>,
    /// Drop every request and reset the `warrant.requests` tag, whatever it holds
    /// (it is only a mailbox: nothing verifiers trust).
    #[arg(long)]
    pub clear: bool,
}

pub fn requests_run(a: RequestsArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let location = super::location(&a.repo)?;
    if a.clear {
        out.report(&request::clear(ctx, &location)?);
        return Ok(0);
    }
    if !a.reject.is_empty() {
        out.report(&request::reject(ctx, &location, &a.reject)?);
        return Ok(0);
    }
    let list = request::list(ctx, &location)?;
    if list.unread > 0 {
        out.warn(&format!(
            "{} more requests were not read (at most {} are)",
            list.unread,
            request::store::MAX_REQUESTS
        ));
    }
    out.report(&list);
    Ok(0)
}

/// Take the key of request `id` for `role` when `fingerprint` matches (both flags
/// are required together by clap).
pub fn take(
    ctx: &Context,
    repo: &str,
    role: &str,
    id: Option<&str>,
    fingerprint: Option<&str>,
    out: &Printer,
) -> Result<Option<TakenKey>, OpError> {
    let (Some(id), Some(fp)) = (id, fingerprint) else {
        return Ok(None);
    };
    let taken = request::take(ctx, &super::location(repo)?, id, fp, role)?;
    out.note(&format!(
        "fingerprint matches: key {} ({}) from request {} is in the key store as {}",
        taken.keyid, taken.fingerprint, taken.request, taken.name
    ));
    Ok(Some(taken))
}

/// `result` of the change that was to use `taken`; when it failed, the key this
/// command put in the key store is removed again, so a refused change leaves the
/// key store as it was.
pub fn or_untake<T>(
    ctx: &Context,
    taken: Option<&TakenKey>,
    result: Result<T, OpError>,
    out: &Printer,
) -> Result<T, OpError> {
    if let (Err(_), Some(t)) = (&result, taken) {
        match request::untake(ctx, t) {
            Ok(()) if t.imported => out.note(&format!(
                "the change failed: key {} of request {} is removed from the key store \
                 again; the request stays open",
                t.name, t.request
            )),
            Ok(()) => {}
            Err(e) => out.warn(&format!(
                "the change failed, and key {} could not be removed from the key store \
                 ({e}); remove {} by hand",
                t.name, t.keyid
            )),
        }
    }
    result
}

/// Close the request a key was taken from, after the change that uses it was
/// published. A failure here leaves that change standing: say so, and how to
/// finish.
pub fn close(ctx: &Context, repo: &str, taken: Option<&TakenKey>, out: &Printer) {
    let Some(t) = taken else { return };
    let closed = super::location(repo).and_then(|l| request::close(ctx, &l, &t.request));
    match closed {
        Ok(()) => out.note(&format!("closed key request {}", t.request)),
        Err(e) => out.warn(&format!(
            "the change is published, but key request {} is still open ({e}); close it \
             with `warrant key requests {repo} --reject {}`",
            t.request, t.request
        )),
    }
}

/// After a root rotation: who did not sign, and what a threshold of 1 now means.
pub fn root_warnings(
    ctx: &Context,
    outcome: &crate::ops::rotate::RotateOutcome,
    taken: Option<&TakenKey>,
    out: &Printer,
) {
    if outcome.role != "root" {
        return;
    }
    if let (Some(t), Some(v)) = (taken, outcome.root_version)
        && !ctx.keys.has(&t.keyid)
    {
        out.note(&format!(
            "the added key {} did not sign root v{v}: only its public half is here; it \
             can sign from the next root on",
            t.name
        ));
    }
    if outcome.threshold == 1 && outcome.keyids.len() > 1 {
        out.warn(&format!(
            "root threshold is 1 of {} keys: any single root key holder (the new one \
             too) can now sign a new root on their own; raise it with `key rotate --role \
             root --threshold N`",
            outcome.keyids.len()
        ));
    }
}

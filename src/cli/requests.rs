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
    let new = NewRequest {
        role: a.role,
        key: a.key,
        note: a.note,
        lifetime: crate::ops::parse_duration(&a.expires)?,
    };
    out.report(&request::publish(ctx, &super::location(&a.repo)?, &new)?);
    Ok(0)
}

/// `warrant key requests REPO [--reject ID]`
#[derive(Debug, clap::Args)]
pub struct RequestsArgs {
    /// The repository.
    pub repo: String,
    /// Drop this request (valid or not) instead of listing.
    #[arg(long, value_name = "ID")]
    pub reject: Option<String>,
}

pub fn requests_run(a: RequestsArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let location = super::location(&a.repo)?;
    if let Some(id) = a.reject {
        request::reject(ctx, &location, &id)?;
        out.report(&request::Rejected {
            repository: location.to_string(),
            rejected: id,
        });
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

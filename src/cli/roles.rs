//! `delegation`, `pending`, `approve`, `refresh`.
use clap::Subcommand;

use super::PinArgs;
use super::output::{InRepo, Printer};
use crate::ops::approve::{approve, pending, refresh};
use crate::ops::delegation::{self, NewDelegation};
use crate::ops::trust::Pin;
use crate::ops::{Context, OpError};

fn signer_pin(p: &PinArgs) -> Result<Pin, OpError> {
    Ok(match p.pin()? {
        Pin::None => Pin::FirstUse,
        p => p,
    })
}

/// `warrant delegation ...`
#[derive(Debug, Subcommand)]
pub enum DelegationCommand {
    /// Delegate tags to a new role with its own keys and threshold (signed by the
    /// delegator's keys; the new role's keys must be in this key store).
    Add {
        /// The repository.
        repo: String,
        /// The new role's name.
        role: String,
        /// A key of the role (id, prefix or name); repeatable.
        #[arg(long = "key", value_name = "ID", required_unless_present = "request")]
        keys: Vec<String>,
        /// Also give the role the key of this key request (`warrant key requests`),
        /// once --fingerprint matches it; the request is then closed.
        #[arg(long, value_name = "ID", requires = "fingerprint")]
        request: Option<String>,
        /// The key's fingerprint as the requester read it to you over another
        /// channel: 16 hex digits (spaces optional) or the six words.
        #[arg(long, value_name = "FP", requires = "request")]
        fingerprint: Option<String>,
        /// Distinct signatures required.
        #[arg(long, default_value_t = 1, value_name = "N")]
        threshold: u64,
        /// Tag pattern the role may sign (`*`, `?`, `[...]`); repeatable; default `*`.
        #[arg(long = "paths", value_name = "GLOB")]
        paths: Vec<String>,
        /// A search that reaches this role stops there.
        #[arg(long)]
        terminating: bool,
        /// The delegating role (default `targets`).
        #[arg(long, value_name = "PARENT")]
        from: Option<String>,
        /// Trust anchor on first contact.
        #[command(flatten)]
        pin: PinArgs,
    },
    /// Remove a role: its targets are no longer trusted.
    Remove {
        /// The repository.
        repo: String,
        /// The role.
        role: String,
        /// Trust anchor on first contact.
        #[command(flatten)]
        pin: PinArgs,
    },
    /// List the delegated roles in search order.
    List {
        /// The repository.
        repo: String,
        /// Trust anchor on first contact.
        #[command(flatten)]
        pin: PinArgs,
    },
}

pub fn delegation_run(cmd: DelegationCommand, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    match cmd {
        DelegationCommand::Add {
            repo,
            role,
            mut keys,
            request,
            fingerprint,
            threshold,
            paths,
            terminating,
            from,
            pin,
        } => {
            let (id, fp) = (request.as_deref(), fingerprint.as_deref());
            let taken = super::requests::take(ctx, &repo, &role, id, fp, out)?;
            keys.extend(taken.iter().map(|t| t.keyid.0.clone()));
            let d = NewDelegation {
                role,
                keys,
                threshold,
                paths,
                terminating,
                from,
            };
            let added =
                (|| delegation::add(ctx, &super::location(&repo)?, &d, &signer_pin(&pin)?))();
            let outcome = super::requests::or_untake(ctx, taken.as_ref(), added, out)?;
            out.report(&InRepo {
                value: &outcome,
                repo: &repo,
            });
            super::requests::close(ctx, &repo, taken.as_ref(), out);
        }
        DelegationCommand::Remove { repo, role, pin } => {
            let outcome =
                delegation::remove(ctx, &super::location(&repo)?, &role, &signer_pin(&pin)?)?;
            out.report(&InRepo {
                value: &outcome,
                repo: &repo,
            });
        }
        DelegationCommand::List { repo, pin } => {
            out.report(&delegation::list(
                ctx,
                &super::location(&repo)?,
                &signer_pin(&pin)?,
            )?);
        }
    }
    Ok(0)
}

/// `warrant pending REPO`
#[derive(Debug, clap::Args)]
pub struct PendingArgs {
    /// The repository.
    pub repo: String,
    /// Trust anchor on first contact.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn pending_run(a: PendingArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    out.report(&pending(
        ctx,
        &super::location(&a.repo)?,
        &signer_pin(&a.pin)?,
    )?);
    Ok(0)
}

/// `warrant approve REPO --role ROLE`
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The repository.
    pub repo: String,
    /// The role whose pending version to co-sign.
    #[arg(long, value_name = "ROLE")]
    pub role: String,
    /// Sign with this key only (id, prefix or name).
    #[arg(long, value_name = "ID")]
    pub key: Option<String>,
    /// Trust anchor on first contact.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn approve_run(a: ApproveArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let outcome = approve(
        ctx,
        &super::location(&a.repo)?,
        &a.role,
        a.key.as_deref(),
        &signer_pin(&a.pin)?,
    )?;
    out.report(&InRepo {
        value: &outcome,
        repo: &a.repo,
    });
    Ok(0)
}

/// `warrant refresh REPO`
#[derive(Debug, clap::Args)]
pub struct RefreshArgs {
    /// The repository.
    pub repo: String,
    /// Lifetime of the new timestamp (e.g. 7d, 12h; default 7d).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Trust anchor on first contact.
    #[command(flatten)]
    pub pin: PinArgs,
}

pub fn refresh_run(a: RefreshArgs, ctx: &Context, out: &Printer) -> Result<u8, OpError> {
    let outcome = refresh(ctx, &super::location(&a.repo)?, &signer_pin(&a.pin)?)?;
    out.report(&InRepo {
        value: &outcome,
        repo: &a.repo,
    });
    Ok(0)
}

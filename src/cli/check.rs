//! `divvi check`: load a config with every key it names, touching no storage. For
//! operators (does this ConfigMap and Secret work?) and for the Terraform test, which
//! checks that the config the module writes is one divvi loads.

use anyhow::Result;
use clap::Args;
use divvi::config::{Ingestor, Portal, Server};
use divvi::store::ObjectStore;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct CheckArgs {
    /// The config file to load (its key files are read too).
    #[arg(long)]
    config: PathBuf,
    /// Whose config it is.
    #[arg(long = "as", value_enum, default_value = "server")]
    party: Party,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Party {
    Server,
    Ingestor,
    Portal,
}

fn location(store: &dyn ObjectStore) -> String {
    store.describe("")
}

pub fn check_command(a: CheckArgs) -> Result<ExitCode> {
    let path = a.config.display();
    match a.party {
        Party::Server => {
            let s = super::outcome::config(Server::load(&a.config))?;
            out!("server {} config {path}: loads", s.index);
            out!("  instance     {}", s.instance);
            out!("  signing key  {}", s.signing_key.key_id());
            let ids: Vec<&str> = s.packet_keys.iter().map(|(id, _)| id.as_str()).collect();
            out!("  packet keys  {}", ids.join(", "));
            out!(
                "  stash key    {}",
                if s.stash_key.is_some() { "yes" } else { "no" }
            );
            out!("  ingestors    {}", s.ingestor_trust.key_ids().join(", "));
            out!("  peer         {}", s.peer_trust.key_ids().join(", "));
            let portal = s.portal_trust.key_ids();
            if !portal.is_empty() || s.dap.as_ref().is_some_and(|d| is_poplar1(&d.task)) {
                let shown = match portal.is_empty() {
                    true => "none: its heavy-hitters queries are refused".to_string(),
                    false => portal.join(", "),
                };
                out!("  portal       {shown}");
            }
            out!("  min clients  {}", s.limits.min_clients);
            if let Some(d) = &s.dap {
                out!(
                    "  dap task     {} ({})",
                    d.task.task_id(),
                    d.task.vdaf().name()
                );
                out!(
                    "  dap role     {} (HPKE key and verify key match)",
                    d.role.name()
                );
                if let Some(dp) = &d.task.params().dp {
                    out!("  dp           {}", dp.describe(d.task.vdaf()));
                }
            }
            for (name, store) in [
                ("ingestion", &s.ingestion),
                ("own", &s.own),
                ("peer_inbox", &s.peer_inbox),
                ("peer_outbox", &s.peer_outbox),
                ("sum_parts", &s.sum_parts),
            ] {
                out!("  {name:<12} {}", location(store.as_ref()));
            }
        }
        Party::Ingestor => {
            let i = super::outcome::config(Ingestor::load(&a.config))?;
            out!("ingestor config {path}: loads");
            out!("  signing key  {}", i.signing_key.key_id());
            for (n, t) in i.targets.iter().enumerate() {
                out!(
                    "  server {n}     {} (packet key {})",
                    location(t.store.as_ref()),
                    t.key_id
                );
            }
            if let Some(task) = &i.dap {
                out!("  dap task     {} ({})", task.task_id(), task.vdaf().name());
            }
        }
        Party::Portal => {
            let p = super::outcome::config(Portal::load(&a.config))?;
            out!("portal config {path}: loads");
            match (
                &p.signing_key,
                p.dap.as_ref().is_some_and(|d| is_poplar1(&d.task)),
            ) {
                (Some(key), _) => out!("  signing key  {}", key.key_id()),
                (None, true) => out!("  signing key  none: collect --heavy-hitters needs one"),
                (None, false) => {}
            }
            for (n, s) in p.servers.iter().enumerate() {
                let keys = s.trust.key_ids().join(", ");
                out!(
                    "  server {n}     {} (trusts {keys})",
                    location(s.sum_parts.as_ref())
                );
            }
            out!("  results      {}", location(p.results.as_ref()));
            if let Some(d) = &p.dap {
                out!(
                    "  dap task     {} ({})",
                    d.task.task_id(),
                    d.task.vdaf().name()
                );
                out!("  dap role     collector (HPKE key matches)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn is_poplar1(task: &divvi::dap::Task) -> bool {
    matches!(task.vdaf(), divvi::dap::VdafConfig::Poplar1 { .. })
}

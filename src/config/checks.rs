//! What a config is refused for at load, before any key or location is touched: two
//! entries where one is meant, two locations that are one place, and key files that are
//! not private. Every command loads its config through these, and so does `divvi check`.

use super::{IngestorServerConfig, PortalServerConfig, PublicKeyConfig, ServerLocations};
use crate::crypto::VerifyingKey;
use crate::ids::ServerIndex;
use crate::store::{LocationConfig, Place};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// Refuses two entries of `field` with one id: a trust set or a key ring keeps one key
/// per id, so the other would be dropped without a word.
pub fn refuse_duplicate_ids<'a>(field: &str, ids: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            bail!("{field}: two entries with id {id:?}; each key needs its own id");
        }
    }
    Ok(())
}

/// The one `[[servers]]` entry for `index`; none, or two (the second would be ignored),
/// is refused.
pub fn the_server_entry<T>(
    entries: &[T],
    index: ServerIndex,
    index_of: impl Fn(&T) -> ServerIndex,
) -> Result<&T> {
    let mut found = entries.iter().filter(|e| index_of(e) == index);
    let entry = found
        .next()
        .ok_or_else(|| anyhow!("no [[servers]] entry with server_index = {index}"))?;
    if found.next().is_some() {
        bail!("two [[servers]] entries with server_index = {index}; each server is listed once");
    }
    Ok(entry)
}

/// The config field `name` of the `[[servers]]` entry for `index`, as errors name it.
pub fn server_field(index: ServerIndex, name: &str) -> String {
    format!("servers[server_index = {index}].{name}")
}

/// The place of a location, or why its URL names none, naming its field.
fn place(field: &str, location: &LocationConfig, base: &Path) -> Result<Place> {
    location.place(base).map_err(|e| anyhow!("{field}: {e}"))
}

/// What each of a server's locations is for: who writes it and who reads it. The five
/// pairs differ, so every two locations must be different places (all ten pairs are
/// refused):
/// - `own` with any other: another party would write this server's run decisions,
///   counted UUIDs (the replay guard) and stash (`ingestion`, `peer_inbox`) and could
///   replace them, or read them (`peer_outbox`, `sum_parts`);
/// - `peer_outbox` with any other: the validations and manifests meant for the peer land
///   where it never reads, and the peer waits for them for ever;
/// - `ingestion`, `peer_inbox`, `sum_parts` with each other: two writers in one place,
///   each able to replace the other's objects (a replaced batch, validation or sum part
///   fails its signature check, and what it carried is lost).
///
/// keygen's layout gives each location its own folder or bucket.
const SERVER_LOCATION_ROLES: [(&str, &str); 5] = [
    ("ingestion", "written by the ingestor"),
    (
        "own",
        "this server's own records, written and read by it alone",
    ),
    ("peer_inbox", "written by the peer"),
    ("peer_outbox", "the peer's inbox, read by the peer"),
    ("sum_parts", "read by the portal"),
];

/// Refuses a server config whose locations are not five different places.
pub fn refuse_shared_server_locations(locations: &ServerLocations, base: &Path) -> Result<()> {
    let all = [
        &locations.ingestion,
        &locations.own,
        &locations.peer_inbox,
        &locations.peer_outbox,
        &locations.sum_parts,
    ];
    let mut places = Vec::new();
    for ((name, _), location) in SERVER_LOCATION_ROLES.iter().zip(all) {
        places.push(place(&format!("locations.{name}"), location, base)?);
    }
    let Some((i, j)) = first_equal_pair(&places) else {
        return Ok(());
    };
    let ((a, a_role), (b, b_role)) = (SERVER_LOCATION_ROLES[i], SERVER_LOCATION_ROLES[j]);
    bail!(
        "locations.{a} ({a_role}) and locations.{b} ({b_role}) are the same location, {}: \
         objects would be replaced by the wrong party or never reach their reader; give \
         each location its own folder or bucket/prefix",
        places[i]
    )
}

/// Refuses an ingestor config whose two servers' ingestion locations are one place: both
/// servers' batches have the same names, so each would replace the other's.
pub fn refuse_shared_ingestion(servers: [&IngestorServerConfig; 2], base: &Path) -> Result<()> {
    let field = |s: &IngestorServerConfig| server_field(s.server_index, "ingestion");
    let places = [
        place(&field(servers[0]), &servers[0].ingestion, base)?,
        place(&field(servers[1]), &servers[1].ingestion, base)?,
    ];
    if places[0] == places[1] {
        bail!(
            "{} and {} are the same location, {}: both servers' batches have the same names, \
             so one server's would replace the other's",
            field(servers[0]),
            field(servers[1]),
            places[0]
        );
    }
    Ok(())
}

/// Refuses a portal config that mixes up its two servers: one sum-parts location and
/// instance for both (a copy-paste slip: one server's sum parts would be looked for where
/// the other writes), or one signing key trusted for both (either could sign the other's
/// sum parts).
pub fn refuse_mixed_up_portal_servers(
    servers: [&PortalServerConfig; 2],
    base: &Path,
) -> Result<()> {
    let [a, b] = servers;
    let field = |s: &PortalServerConfig, name: &str| server_field(s.server_index, name);
    let (a_sums, b_sums) = (field(a, "sum_parts"), field(b, "sum_parts"));
    let same_place = place(&a_sums, &a.sum_parts, base)? == place(&b_sums, &b.sum_parts, base)?;
    if same_place && a.instance == b.instance {
        bail!(
            "{a_sums} and {b_sums} are the same location with the same instance {:?}; each \
             server's sum parts come from its own location",
            a.instance
        );
    }
    for ka in &a.signing_keys {
        if let Some(kb) = b.signing_keys.iter().find(|kb| same_public_key(ka, kb)) {
            bail!(
                "{} {:?} and {} {:?} are the same public key: either server could sign the \
                 other's sum parts; each server has its own key",
                field(a, "signing_keys"),
                ka.id,
                field(b, "signing_keys"),
                kb.id
            );
        }
    }
    Ok(())
}

/// Refuses a server config that trusts one key in two roles: an ingestor's key as the
/// peer's (the ingestor, which must never judge a packet, could then forge the peer's
/// validations), or this server's own signing key as an ingestor's or the peer's (it
/// would take its own signatures for theirs).
pub fn refuse_key_in_two_roles(
    ingestors: &[PublicKeyConfig],
    peer: &[PublicKeyConfig],
    own: &VerifyingKey,
) -> Result<()> {
    for i in ingestors {
        if let Some(p) = peer.iter().find(|p| same_public_key(i, p)) {
            bail!(
                "trust.ingestors {:?} and trust.peer {:?} are the same public key: the ingestor \
                 could sign validations as the peer; the peer has a key of its own",
                i.id,
                p.id
            );
        }
    }
    let own = own.to_base64();
    let is_own = |k: &PublicKeyConfig| {
        VerifyingKey::from_base64(&k.public_key).is_ok_and(|v| v.to_base64() == own)
    };
    for (field, keys) in [("trust.ingestors", ingestors), ("trust.peer", peer)] {
        if let Some(k) = keys.iter().find(|k| is_own(k)) {
            bail!(
                "{field} {:?} is this server's own signing key (signing_key): it would take its \
                 own signatures for another party's",
                k.id
            );
        }
    }
    Ok(())
}

/// Whether two trusted keys are one key, however each is written (SPKI or raw point).
/// A key that does not parse is reported where the trust set is built.
fn same_public_key(a: &PublicKeyConfig, b: &PublicKeyConfig) -> bool {
    match (
        VerifyingKey::from_base64(&a.public_key),
        VerifyingKey::from_base64(&b.public_key),
    ) {
        (Ok(a), Ok(b)) => a.to_base64() == b.to_base64(),
        _ => false,
    }
}

/// The first two equal places, by position.
fn first_equal_pair(places: &[Place]) -> Option<(usize, usize)> {
    (0..places.len())
        .flat_map(|i| (i + 1..places.len()).map(move |j| (i, j)))
        .find(|&(i, j)| places[i] == places[j])
}

/// Whether a secret's file name is more likely a key pasted in its place: PEM text, or a
/// long run of base64 with upper and lower case and digits and no dot (real key file
/// names are short, or have a dot or no capitals).
pub fn looks_like_key_material(name: &str) -> bool {
    if name.contains("-----") || name.contains("PRIVATE KEY") || name.contains('\n') {
        return true;
    }
    let base64 = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c));
    let mixed = name.chars().any(|c| c.is_ascii_uppercase())
        && name.chars().any(|c| c.is_ascii_lowercase())
        && name.chars().any(|c| c.is_ascii_digit());
    name.len() >= 40 && base64 && mixed
}

/// What a key file that group or others can read draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFileCheck {
    /// For the keys a server uses: they open clients' packets and sign what the peer and
    /// the portal trust.
    Refuse,
    /// For other parties' own keys (the ingestor's), and keys read only for their public
    /// half (`divvi inspect`).
    Warn,
}

/// Refuses (or warns about) a key file others than its owner may read. A missing file is
/// left for reading to report.
pub fn check_key_file_mode(path: &Path, check: KeyFileCheck) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    let owned_by_us = meta.uid() == unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o777;
    if exposed_bits(mode, owned_by_us) == 0 {
        return Ok(());
    }
    match check {
        KeyFileCheck::Refuse => bail!(
            "secret file {} is mode {mode:03o}, open to group or others; a server's keys must \
             be owner-only: chmod 600 {}",
            path.display(),
            path.display()
        ),
        KeyFileCheck::Warn => tracing::warn!(
            file = %path.display(),
            mode = format!("{mode:03o}"),
            "key file is open to group or others; chmod 600 it"
        ),
    }
    Ok(())
}

/// The permission bits that let someone other than the owner at a key file. Group read
/// is allowed on a file owned by another user: that is a Kubernetes Secret mounted with
/// `fsGroup` (root-owned, 0440), which the job can only read through its group.
fn exposed_bits(mode: u32, owned_by_us: bool) -> u32 {
    let exposed = mode & 0o077;
    match owned_by_us {
        true => exposed,
        false => exposed & !0o040,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_is_told_from_file_names() {
        for key in [
            "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgX2Fz",
            "-----BEGIN PRIVATE KEY-----",
            "q3Zc5Y0kN8b0u7Ww1Yq9m2Jp4Lr6Tt8Vv0Xx2Zz4Bb6=",
        ] {
            assert!(looks_like_key_material(key), "{key}");
        }
        for name in [
            "keys/server0-signing.key",
            "/var/run/secrets/divvi/server0-packet.key",
            "/run/secrets/divvi-keys/server0-signing-key-for-production",
            "Keys/Server0",
        ] {
            assert!(!looks_like_key_material(name), "{name}");
        }
    }

    #[test]
    fn group_read_is_allowed_only_on_a_file_another_user_owns() {
        assert_eq!(exposed_bits(0o600, true), 0);
        assert_eq!(exposed_bits(0o400, true), 0);
        assert_ne!(exposed_bits(0o640, true), 0);
        assert_ne!(exposed_bits(0o604, true), 0);
        assert_eq!(exposed_bits(0o440, false), 0);
        assert_ne!(exposed_bits(0o444, false), 0);
        assert_ne!(exposed_bits(0o460, false), 0);
    }

    #[test]
    fn duplicate_ids_are_named() {
        assert!(refuse_duplicate_ids("f", ["a", "b"]).is_ok());
        let e = refuse_duplicate_ids("trust.peer", ["a", "b", "a"]).unwrap_err();
        assert!(
            e.to_string()
                .contains("trust.peer: two entries with id \"a\""),
            "{e}"
        );
    }
}

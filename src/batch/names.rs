//! The object names of the ENPA layout, for the identities of `crate::ids`.

use crate::ids::{run_name, validate_name, BatchId, RunId, ServerIndex, SumPartId, DATE_PATH};
use chrono::NaiveDateTime;
use uuid::Uuid;

/// Where in a server's own location the Poplar1 round states live: a prefix of their
/// own, so a bucket lifecycle rule expires them within days (terraform/'s
/// `round_state_days`) while the rest of the location is kept for its retention.
pub const ROUND_STASH_PREFIX: &str = "rounds/";

/// Where in a server's own location the share stashes live: a prefix of their own, so a
/// bucket lifecycle rule expires them with the peer's validations (without which no batch
/// can be summed any more), while validations, run records and the replay set are kept
/// for the location's retention. A stash holds each report's share data (sealed):
/// keeping it longer than it can serve would only keep shares around.
pub const SHARE_STASH_PREFIX: &str = "stash/";

/// Which kind of batch: what the ingestor wrote, or a server's validation of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Ingestion,
    Validation(ServerIndex),
    /// A server's verifier shares of one round (1 or 2) of a Poplar1 pass.
    Round {
        server: ServerIndex,
        pass: u32,
        round: u8,
    },
}

impl BatchKind {
    fn extension(self) -> String {
        match self {
            BatchKind::Ingestion => "batch".into(),
            BatchKind::Validation(s) => format!("validity_{s}"),
            BatchKind::Round {
                server,
                pass,
                round,
            } => format!("pass{pass}r{round}_{server}"),
        }
    }
}

/// The three object keys of a batch (header, packet file, signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectNames {
    pub header: String,
    pub packets: String,
    pub signature: String,
}

impl ObjectNames {
    fn from_header(header: String, packets: String) -> Self {
        ObjectNames {
            signature: format!("{header}.sig"),
            header,
            packets,
        }
    }
}

impl BatchId {
    pub fn names(&self, kind: BatchKind) -> ObjectNames {
        let header = format!(
            "{}/{}/{}.{}",
            self.aggregation,
            self.date_path(),
            self.uuid,
            kind.extension()
        );
        ObjectNames::from_header(header.clone(), format!("{header}.avro"))
    }

    /// Key of this server's share stash for the batch (in its own location), under
    /// [`SHARE_STASH_PREFIX`]. (A stash an older divvi wrote beside the validation is
    /// not looked for: aggregate then opens and verifies the batch again.)
    pub fn stash_name(&self, server: ServerIndex) -> String {
        format!(
            "{SHARE_STASH_PREFIX}{}/{}/{}.shares_{server}",
            self.aggregation,
            self.date_path(),
            self.uuid
        )
    }

    /// Key of this server's sealed Poplar1 state after `round` of pass `pass`: under
    /// [`ROUND_STASH_PREFIX`], apart from what must be kept, since it is dead once the
    /// pass's sum part exists.
    pub fn round_stash_name(&self, server: ServerIndex, pass: u32, round: u8) -> String {
        format!(
            "{ROUND_STASH_PREFIX}{}/{}/{}.pass{pass}r{round}.shares_{server}",
            self.aggregation,
            self.date_path(),
            self.uuid
        )
    }

    /// Key of the list of reports this server refused in `round` of pass `pass`, with
    /// the reasons (JSON, in its own location): the pass's sum part lists them.
    pub fn round_rejected_name(&self, server: ServerIndex, pass: u32, round: u8) -> String {
        format!(
            "{}/{}/{}.pass{pass}r{round}.rejected_{server}",
            self.aggregation,
            self.date_path(),
            self.uuid
        )
    }

    /// Parses a batch as it is displayed, and as manifests and records list it
    /// (`agg/Y/m/d/H/M/uuid`); None for anything else.
    pub fn parse(text: &str) -> Option<BatchId> {
        BatchId::from_signature_key(&format!("{text}.batch.sig"), BatchKind::Ingestion)
    }

    /// Parses the signature key of a batch of `kind` (`agg/Y/m/d/H/M/uuid.ext.sig`);
    /// None for any other key.
    pub fn from_signature_key(key: &str, kind: BatchKind) -> Option<BatchId> {
        let suffix = format!(".{}.sig", kind.extension());
        let stem = key.strip_suffix(&suffix)?;
        let mut parts = stem.rsplitn(7, '/');
        let uuid = Uuid::parse_str(parts.next()?).ok()?;
        let minute = parts.next()?;
        let hour = parts.next()?;
        let day = parts.next()?;
        let month = parts.next()?;
        let year = parts.next()?;
        let aggregation = parts.next()?;
        let date = format!("{year}/{month}/{day}/{hour}/{minute}");
        let time = NaiveDateTime::parse_from_str(&date, DATE_PATH)
            .ok()?
            .and_utc();
        let id = BatchId::new(aggregation, time, uuid).ok()?;
        // Only canonical keys: the round trip must give the same key back.
        (id.names(kind).signature == key).then_some(id)
    }
}

impl SumPartId {
    pub fn names(&self) -> ObjectNames {
        let stem = format!(
            "{}/{}/{}",
            self.instance,
            self.aggregation,
            run_name(&self.window, self.run)
        );
        ObjectNames::from_header(
            format!("{stem}.sum_{}", self.server),
            format!("{stem}.invalid_uuid_{}.avro", self.server),
        )
    }

    /// The sum part whose signature object is `key` in `instance`'s part of a sum-parts
    /// location (canonical keys only; a heavy-hitters pass's part is not one).
    pub fn from_signature_key(instance: &str, key: &str) -> Option<SumPartId> {
        let rest = key.strip_prefix(instance)?.strip_prefix('/')?;
        let (aggregation, rest) = rest.split_once('/')?;
        let (run, server) = rest.strip_suffix(".sig")?.rsplit_once(".sum_")?;
        let server = match server {
            "0" => ServerIndex::Zero,
            "1" => ServerIndex::One,
            _ => return None,
        };
        let (window, run) = RunId::parse_name(run)?;
        let id = SumPartId {
            instance: instance.to_string(),
            aggregation: aggregation.to_string(),
            window,
            run,
            server,
        };
        (validate_name("aggregation", aggregation).is_ok() && id.names().signature == key)
            .then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{parse_time, validate_name, Window};
    use chrono::TimeDelta;

    fn fixture_id() -> BatchId {
        BatchId::new(
            "test-aggregation",
            parse_time("2021/04/13/19/17").unwrap(),
            Uuid::parse_str("ba097344-2b4e-45db-a002-c83f4a9adc63").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn names_match_the_enpa_layout() {
        let id = fixture_id();
        let n = id.names(BatchKind::Ingestion);
        assert_eq!(
            n.header,
            "test-aggregation/2021/04/13/19/17/ba097344-2b4e-45db-a002-c83f4a9adc63.batch"
        );
        assert_eq!(n.packets, format!("{}.avro", n.header));
        assert_eq!(n.signature, format!("{}.sig", n.header));
        let v = id.names(BatchKind::Validation(ServerIndex::One));
        assert!(v.header.ends_with(".validity_1"));
        assert_eq!(
            BatchId::from_signature_key(&n.signature, BatchKind::Ingestion),
            Some(id.clone())
        );
        assert_eq!(
            BatchId::from_signature_key(&v.signature, BatchKind::Ingestion),
            None
        );
        assert_eq!(
            BatchId::from_signature_key("x/2021/04/13/19/17/nope.batch.sig", BatchKind::Ingestion),
            None
        );
    }

    #[test]
    fn windows_include_both_ends() {
        let t = parse_time("202104131917").unwrap();
        let w = Window::new(t, t).unwrap();
        assert_eq!(w.name(), "202104131917-202104131917");
        assert!(w.contains(fixture_id().time));
        assert!(!w.contains(t + TimeDelta::minutes(1)));
        assert!(Window::new(t, t - TimeDelta::minutes(1)).is_err());
        let s = SumPartId {
            instance: "local-test".into(),
            aggregation: "test-aggregation".into(),
            window: w,
            run: 0,
            server: ServerIndex::Zero,
        };
        assert_eq!(
            s.names().header,
            "local-test/test-aggregation/202104131917-202104131917.sum_0"
        );
        assert_eq!(
            s.names().packets,
            "local-test/test-aggregation/202104131917-202104131917.invalid_uuid_0.avro"
        );
        let late = SumPartId { run: 2, ..s };
        assert_eq!(
            late.names().signature,
            "local-test/test-aggregation/202104131917-202104131917-late2.sum_0.sig"
        );
    }

    #[test]
    fn sum_part_signature_keys_parse_back() {
        let window = Window::new(
            parse_time("202611230000").unwrap(),
            parse_time("202611232359").unwrap(),
        )
        .unwrap();
        for (run, server) in [(0, ServerIndex::Zero), (2, ServerIndex::One)] {
            let id = SumPartId {
                instance: "pha".into(),
                aggregation: "a-b_c.1".into(),
                window,
                run,
                server,
            };
            let key = id.names().signature;
            assert_eq!(SumPartId::from_signature_key("pha", &key), Some(id));
            assert_eq!(SumPartId::from_signature_key("ph", &key), None);
        }
        for other in [
            "pha/a/202611230000-202611232359.sum_0",
            "pha/a/202611230000-202611232359.sum_2.sig",
            "pha/a/202611230000-202611232359.pass0.sum_0.sig",
            "pha/a/202611230000-202611232359.invalid_uuid_0.avro.sig",
            "pha/a/b/202611230000-202611232359.sum_0.sig",
            "pha/../202611230000-202611232359.sum_0.sig",
        ] {
            assert_eq!(SumPartId::from_signature_key("pha", other), None, "{other}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("aggregation", "a-b_c.1").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "é"] {
            assert!(validate_name("aggregation", bad).is_err(), "{bad:?}");
        }
    }
}

//! Prio2 glue over `prio::vdaf::prio2`: shard a measurement, compute a verifier share from
//! an externally chosen evaluation point (`r_pit`), decide validity from both verifier
//! shares, and accumulate output shares. Pure: no files, no keys.

use prio::codec::{Encode, ParameterizedDecode};
use prio::field::{FieldElement, FieldElementWithInteger, FieldPrio2};
use prio::vdaf::prio2::{Prio2, Prio2VerifierState};
use prio::vdaf::{Aggregator, Client, Share, VerifyTransition};

use crate::ids::ServerIndex;

/// The Prio2 field modulus, as written in every header's `prime` field.
pub const PRIME: u32 = 4_293_918_721;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VdafError {
    #[error("bins must be between 1 and {max}, got {bins}")]
    BadBins { bins: i64, max: usize },
    #[error("measurement has {got} entries, expected {bins}")]
    WrongLength { got: usize, bins: usize },
    #[error("r_pit {0} is out of range (must fit in 32 bits, unsigned)")]
    RPitOutOfRange(i64),
    #[error("r_pit {0} is a root of unity of the proof's evaluation domain (evaluating there leaks data)")]
    RPitRootOfUnity(i64),
    #[error("share does not decode: {0}")]
    BadShare(String),
    #[error("verifier value {0} is not a field element (must be below {PRIME})")]
    NotAFieldElement(i64),
    #[error("prio: {0}")]
    Prio(String),
}

/// A server's verifier share of one packet: the (f_r, g_r, h_r) of a validity packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierShare {
    pub f_r: u32,
    pub g_r: u32,
    pub h_r: u32,
}

impl VerifierShare {
    /// From the Avro longs of a validity packet; values outside the field are refused.
    pub fn from_longs(f_r: i64, g_r: i64, h_r: i64) -> Result<Self, VdafError> {
        let check = |v: i64| match u32::try_from(v) {
            Ok(x) if x < PRIME => Ok(x),
            _ => Err(VdafError::NotAFieldElement(v)),
        };
        Ok(VerifierShare {
            f_r: check(f_r)?,
            g_r: check(g_r)?,
            h_r: check(h_r)?,
        })
    }
}

/// The Prio2 instance for a number of bins, with the checks ENPA's servers need.
#[derive(Debug, Clone)]
pub struct Prio2Bins {
    bins: usize,
    prio2: Prio2,
    /// 2n, the size of the evaluation domain; r with r^(2n) = 1 must be refused.
    domain_size: u32,
}

/// Largest bin count accepted: far beyond any ENPA metric, well within the field's 2-adicity.
pub const MAX_BINS: usize = 1 << 16;

impl Prio2Bins {
    pub fn new(bins: i64) -> Result<Self, VdafError> {
        let bad = || VdafError::BadBins {
            bins,
            max: MAX_BINS,
        };
        let b = usize::try_from(bins).map_err(|_| bad())?;
        if b == 0 || b > MAX_BINS {
            return Err(bad());
        }
        let prio2 = Prio2::new(b).map_err(|e| VdafError::Prio(e.to_string()))?;
        let domain_size = u32::try_from(2 * (b + 1).next_power_of_two()).map_err(|_| bad())?;
        Ok(Prio2Bins {
            bins: b,
            prio2,
            domain_size,
        })
    }

    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Length in bytes of the leader's share (server 0 plaintext).
    pub fn leader_share_len(&self) -> usize {
        4 * (self.bins + 3 + (self.bins + 1).next_power_of_two())
    }

    /// Splits a measurement into the leader share bytes and the helper seed bytes.
    /// Any u32 entries are accepted here on purpose: a measurement that is not 0/1 yields
    /// shares whose proof fails, which is how invalid reports are exercised.
    pub fn shard(&self, measurement: &[u32]) -> Result<(Vec<u8>, Vec<u8>), VdafError> {
        if measurement.len() != self.bins {
            return Err(VdafError::WrongLength {
                got: measurement.len(),
                bins: self.bins,
            });
        }
        let (_, shares) = self
            .prio2
            .shard(b"", &measurement.to_vec(), &[0u8; 16])
            .map_err(|e| VdafError::Prio(e.to_string()))?;
        let mut encoded = Vec::with_capacity(2);
        for share in &shares {
            encoded.push(
                share
                    .get_encoded()
                    .map_err(|e| VdafError::Prio(e.to_string()))?,
            );
        }
        let helper = encoded.pop();
        let leader = encoded.pop();
        match (leader, helper) {
            (Some(l), Some(h)) => Ok((l, h)),
            _ => Err(VdafError::Prio(
                "prio2 returned fewer than two shares".into(),
            )),
        }
    }

    /// Maps `r_pit` to the field, refusing values that do not fit in 32 bits and points of
    /// the evaluation domain.
    pub fn query_point(&self, r_pit: i64) -> Result<FieldPrio2, VdafError> {
        let r = u32::try_from(r_pit).map_err(|_| VdafError::RPitOutOfRange(r_pit))?;
        let point = FieldPrio2::from(r);
        if point.pow(self.domain_size) == FieldPrio2::one() {
            return Err(VdafError::RPitRootOfUnity(r_pit));
        }
        Ok(point)
    }

    fn decode_share(
        &self,
        server: ServerIndex,
        plaintext_share: &[u8],
    ) -> Result<Share<FieldPrio2, 32>, VdafError> {
        // The length first: prio's decoder only says "I/O error" for a short share.
        let (expected, what) = match server {
            ServerIndex::Zero => (self.leader_share_len(), format!(" for {} bins", self.bins)),
            ServerIndex::One => (32, String::new()),
        };
        if plaintext_share.len() != expected {
            return Err(VdafError::BadShare(format!(
                "share of {} bytes, expected {expected}{what}",
                plaintext_share.len()
            )));
        }
        let agg_id = usize::from(server.number());
        Share::get_decoded_with_param(&(&self.prio2, agg_id), plaintext_share)
            .map_err(|e| VdafError::BadShare(e.to_string()))
    }

    /// Decodes a server's plaintext share and computes its verifier share at `r_pit`:
    /// intake's work.
    pub fn verifier_share(
        &self,
        server: ServerIndex,
        plaintext_share: &[u8],
        r_pit: i64,
    ) -> Result<VerifierShare, VdafError> {
        let point = self.query_point(r_pit)?;
        let share = self.decode_share(server, plaintext_share)?;
        let (_, verifier) = self
            .prio2
            .verify_init_with_query_rand(point, &share, server.is_leader())
            .map_err(|e| VdafError::Prio(e.to_string()))?;
        decode_verifier(&verifier)
    }

    /// The output share of a packet already known valid: the first `bins` elements of the
    /// server's input share, without checking the proof again (aggregate's work).
    pub fn output_share(
        &self,
        server: ServerIndex,
        plaintext_share: &[u8],
    ) -> Result<OutputShare, VdafError> {
        let share = self.decode_share(server, plaintext_share)?;
        let elements: Vec<FieldPrio2> = match share {
            Share::Leader(data) => data[..self.bins].to_vec(),
            Share::Helper(_) => {
                // The helper's input is expanded from its seed; prio does that in
                // `verify_next`, whose state is the encoded seed.
                let state =
                    Prio2VerifierState::get_decoded_with_param(&(&self.prio2, 1), plaintext_share)
                        .map_err(|e| VdafError::BadShare(e.to_string()))?;
                match self
                    .prio2
                    .verify_next(b"", state, ())
                    .map_err(|e| VdafError::Prio(e.to_string()))?
                {
                    VerifyTransition::Finish(out) => out.as_ref().to_vec(),
                    _ => return Err(VdafError::Prio("prio2 did not finish in one round".into())),
                }
            }
        };
        Ok(OutputShare(elements.into_iter().map(u32::from).collect()))
    }
}

impl Prio2Bins {
    /// The part of a plaintext share that aggregate sums, to keep after intake: server 0's
    /// first `bins` field elements (4 bytes each), or server 1's 32-byte seed.
    pub fn kept_share<'a>(
        &self,
        server: ServerIndex,
        plaintext: &'a [u8],
    ) -> Result<&'a [u8], VdafError> {
        let len = match server {
            ServerIndex::Zero => 4 * self.bins,
            ServerIndex::One => 32,
        };
        plaintext.get(..len).ok_or_else(|| {
            VdafError::BadShare(format!(
                "share of {} bytes is shorter than {len}",
                plaintext.len()
            ))
        })
    }

    /// The output share from kept bytes (see `kept_share`).
    pub fn output_share_from_kept(
        &self,
        server: ServerIndex,
        kept: &[u8],
    ) -> Result<OutputShare, VdafError> {
        match server {
            ServerIndex::One => self.output_share(server, kept),
            ServerIndex::Zero => {
                if kept.len() != 4 * self.bins {
                    return Err(VdafError::BadShare(format!(
                        "kept share of {} bytes, expected {}",
                        kept.len(),
                        4 * self.bins
                    )));
                }
                kept.chunks_exact(4)
                    .map(|w| {
                        let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                        if v < PRIME {
                            Ok(v)
                        } else {
                            Err(VdafError::NotAFieldElement(i64::from(v)))
                        }
                    })
                    .collect::<Result<Vec<u32>, _>>()
                    .map(OutputShare)
            }
        }
    }
}

/// The three field elements of prio's verifier share, read through its public encoding
/// (its fields are private): f_r, g_r, h_r as 4-byte little-endian each.
fn decode_verifier(share: &impl Encode) -> Result<VerifierShare, VdafError> {
    let bytes = share
        .get_encoded()
        .map_err(|e| VdafError::Prio(e.to_string()))?;
    let word = |i: usize| -> Result<u32, VdafError> {
        bytes
            .get(4 * i..4 * i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| VdafError::Prio("verifier share has an unexpected length".into()))
    };
    Ok(VerifierShare {
        f_r: word(0)?,
        g_r: word(1)?,
        h_r: word(2)?,
    })
}

/// A packet is valid iff (f0 + f1)·(g0 + g1) = h0 + h1 in the field.
pub fn is_valid(a: &VerifierShare, b: &VerifierShare) -> bool {
    let f = FieldPrio2::from(a.f_r) + FieldPrio2::from(b.f_r);
    let g = FieldPrio2::from(a.g_r) + FieldPrio2::from(b.g_r);
    let h = FieldPrio2::from(a.h_r) + FieldPrio2::from(b.h_r);
    f * g == h
}

/// One server's output share of one packet: `bins` field elements as integers below p.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputShare(pub Vec<u32>);

/// A running sum of output shares, mod p.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accumulator {
    sum: Vec<FieldPrio2>,
    count: u64,
}

impl Accumulator {
    pub fn new(bins: usize) -> Self {
        Accumulator {
            sum: vec![FieldPrio2::zero(); bins],
            count: 0,
        }
    }

    pub fn add(&mut self, share: &OutputShare) -> Result<(), VdafError> {
        if share.0.len() != self.sum.len() {
            return Err(VdafError::WrongLength {
                got: share.0.len(),
                bins: self.sum.len(),
            });
        }
        for (acc, v) in self.sum.iter_mut().zip(&share.0) {
            *acc += FieldPrio2::from(*v);
        }
        self.count += 1;
        Ok(())
    }

    /// Adds another accumulator (used to merge per-chunk sums computed in parallel).
    pub fn merge(&mut self, other: &Accumulator) -> Result<(), VdafError> {
        if other.sum.len() != self.sum.len() {
            return Err(VdafError::WrongLength {
                got: other.sum.len(),
                bins: self.sum.len(),
            });
        }
        for (acc, v) in self.sum.iter_mut().zip(&other.sum) {
            *acc += *v;
        }
        self.count += other.count;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> Vec<u32> {
        self.sum.iter().map(|f| u32::from(*f)).collect()
    }
}

/// Adds two sum parts element-wise mod p (the portal's combine step). Values must be below p.
pub fn combine(a: &[i64], b: &[i64]) -> Result<Vec<u64>, VdafError> {
    if a.len() != b.len() {
        return Err(VdafError::WrongLength {
            got: b.len(),
            bins: a.len(),
        });
    }
    let to_field = |v: i64| match u32::try_from(v) {
        Ok(x) if x < PRIME => Ok(FieldPrio2::from(x)),
        _ => Err(VdafError::NotAFieldElement(v)),
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| Ok(u64::from(u32::from(to_field(*x)? + to_field(*y)?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bins: usize, measurement: &[u32], r_pit: i64) -> (bool, Vec<u64>) {
        let p = Prio2Bins::new(bins as i64).unwrap();
        let (l, h) = p.shard(measurement).unwrap();
        assert_eq!(l.len(), p.leader_share_len());
        assert_eq!(h.len(), 32);
        let v0 = p.verifier_share(ServerIndex::Zero, &l, r_pit).unwrap();
        let v1 = p.verifier_share(ServerIndex::One, &h, r_pit).unwrap();
        let o0 = p.output_share(ServerIndex::Zero, &l).unwrap();
        let o1 = p.output_share(ServerIndex::One, &h).unwrap();
        // Kept bytes give the same output shares.
        for (server, share, out) in [(ServerIndex::Zero, &l, &o0), (ServerIndex::One, &h, &o1)] {
            let kept = p.kept_share(server, share).unwrap();
            assert_eq!(&p.output_share_from_kept(server, kept).unwrap(), out);
        }
        let s0: Vec<i64> = o0.0.iter().map(|&x| x as i64).collect();
        let s1: Vec<i64> = o1.0.iter().map(|&x| x as i64).collect();
        (is_valid(&v0, &v1), combine(&s0, &s1).unwrap())
    }

    #[test]
    fn valid_measurement_verifies_and_reconstructs() {
        let m = [0, 1, 1, 0, 1];
        let (valid, sum) = run(5, &m, 998_314_904);
        assert!(valid);
        assert_eq!(sum, vec![0, 1, 1, 0, 1]);
    }

    #[test]
    fn non_binary_measurement_fails_the_proof() {
        let (valid, _) = run(4, &[0, 2, 0, 0], 12345);
        assert!(!valid);
    }

    #[test]
    fn r_pit_checks() {
        let p = Prio2Bins::new(16).unwrap();
        assert_eq!(p.query_point(-1), Err(VdafError::RPitOutOfRange(-1)));
        assert_eq!(
            p.query_point(1 << 32),
            Err(VdafError::RPitOutOfRange(1 << 32))
        );
        // 1 is a root of unity of every domain.
        assert_eq!(p.query_point(1), Err(VdafError::RPitRootOfUnity(1)));
        // p - 1 = -1 squares to 1.
        let minus_one = i64::from(PRIME - 1);
        assert_eq!(
            p.query_point(minus_one),
            Err(VdafError::RPitRootOfUnity(minus_one))
        );
        assert!(p.query_point(998_314_904).is_ok());
    }

    #[test]
    fn bad_bins_and_shares() {
        assert!(Prio2Bins::new(0).is_err());
        assert!(Prio2Bins::new(-3).is_err());
        assert!(Prio2Bins::new(1 << 40).is_err());
        let p = Prio2Bins::new(3).unwrap();
        assert!(matches!(
            p.verifier_share(ServerIndex::Zero, &[1, 2, 3], 5),
            Err(VdafError::BadShare(_))
        ));
        assert!(matches!(
            p.verifier_share(ServerIndex::One, &[0; 31], 5),
            Err(VdafError::BadShare(_))
        ));
    }

    #[test]
    fn verifier_values_outside_field_are_refused() {
        assert!(VerifierShare::from_longs(1, 2, 3).is_ok());
        assert_eq!(
            VerifierShare::from_longs(i64::from(PRIME), 0, 0),
            Err(VdafError::NotAFieldElement(i64::from(PRIME)))
        );
        assert!(VerifierShare::from_longs(0, -1, 0).is_err());
    }

    #[test]
    fn accumulator_sums_mod_p() {
        let mut a = Accumulator::new(2);
        a.add(&OutputShare(vec![PRIME - 1, 5])).unwrap();
        a.add(&OutputShare(vec![2, 5])).unwrap();
        assert_eq!(a.sum(), vec![1, 10]);
        assert_eq!(a.count(), 2);
        assert!(a.add(&OutputShare(vec![1])).is_err());
    }
}

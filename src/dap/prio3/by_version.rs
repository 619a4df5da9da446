//! A task's Prio3 in the VDAF draft its DAP version speaks: VDAF-18 for DAP-18 tasks,
//! VDAF-08 for DAP-09 tasks. The pipeline (client, intake, aggregate, collect) holds these
//! and never asks which draft it is running; the verify key and the VDAF context (DAP-18's
//! "dap-18" ‖ task id; VDAF-08 has none) come from the task.

use super::split::{AggregateSum, Prio3Aggregator, Provisional};
use super::vdaf08::{self, Prio3Aggregator08, Prio3Vdaf08};
use super::{
    dap_context, AggregateResult, Measurement, Prio3Vdaf, Shares, VdafStepError, VerifyInput,
    NONCE_LEN, VERIFY_KEY_LEN,
};
use crate::dap::task::{DapVersion, Task};

/// A task's Prio3 instance.
#[derive(Debug, Clone)]
pub struct TaskVdaf {
    draft: Draft<Prio3Vdaf, Prio3Vdaf08>,
    /// The VDAF context (empty for VDAF-08).
    ctx: Vec<u8>,
}

/// One value per VDAF draft.
#[derive(Debug, Clone)]
enum Draft<A, B> {
    V18(A),
    V08(B),
}

/// The verify key as the draft's array, or an error naming both lengths.
fn key<const N: usize>(verify_key: &[u8]) -> Result<&[u8; N], VdafStepError> {
    verify_key.try_into().map_err(|_| {
        VdafStepError::Params(format!(
            "the verify key is {} bytes, this task's VDAF takes {N}",
            verify_key.len()
        ))
    })
}

impl TaskVdaf {
    pub fn new(task: &Task) -> Result<Self, VdafStepError> {
        Ok(match task.version() {
            DapVersion::Dap18 => TaskVdaf {
                draft: Draft::V18(Prio3Vdaf::new(task.vdaf())?),
                ctx: dap_context(task.task_id()),
            },
            DapVersion::Dap09 => TaskVdaf {
                draft: Draft::V08(Prio3Vdaf08::new(task.vdaf())?),
                ctx: Vec::new(),
            },
        })
    }

    /// Client side: splits `measurement` into a public share and two input shares.
    pub fn shard(
        &self,
        measurement: &Measurement,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<Shares, VdafStepError> {
        match &self.draft {
            Draft::V18(v) => v.shard(&self.ctx, measurement, nonce),
            Draft::V08(v) => v.shard(measurement, nonce),
        }
    }

    /// Collector: combines both encoded aggregate shares into the result.
    pub fn unshard(
        &self,
        aggregate_shares: [&[u8]; 2],
        num_measurements: usize,
    ) -> Result<AggregateResult, VdafStepError> {
        match &self.draft {
            Draft::V18(v) => v.unshard(aggregate_shares, num_measurements),
            Draft::V08(v) => v.unshard(aggregate_shares, num_measurements),
        }
    }

    /// The result of a DP task's two aggregate shares, value by value, as signed numbers
    /// (noise may take a value below zero, which [`TaskVdaf::unshard`] cannot show).
    pub fn unshard_signed(&self, aggregate_shares: [&[u8]; 2]) -> Result<Vec<i128>, VdafStepError> {
        let aggregator = self.aggregator(0)?;
        let mut sum = aggregator.decode_sum(aggregate_shares[0])?;
        sum.merge(&aggregator.decode_sum(aggregate_shares[1])?)?;
        Ok(sum.signed_values())
    }

    /// Aggregator `agg_id` (0 leader, 1 helper) of this task.
    pub fn aggregator(&self, agg_id: usize) -> Result<TaskAggregator, VdafStepError> {
        let (draft, empty) = match &self.draft {
            Draft::V18(v) => {
                let a = Prio3Aggregator::new(v, agg_id)?;
                let empty = a.new_sum();
                (Draft::V18(a), empty)
            }
            Draft::V08(v) => {
                let a = Prio3Aggregator08::new(v, agg_id)?;
                let empty = a.new_sum()?;
                (Draft::V08(a), empty)
            }
        };
        Ok(TaskAggregator {
            draft,
            empty,
            ctx: self.ctx.clone(),
        })
    }
}

/// One aggregator of a task, verifying in intake's and aggregate's two halves (see
/// [`Prio3Aggregator`]).
pub struct TaskAggregator {
    draft: Draft<Prio3Aggregator, Prio3Aggregator08>,
    /// A sum of no reports, made once.
    empty: AggregateSum,
    ctx: Vec<u8>,
}

impl TaskAggregator {
    /// Bytes intake keeps per report for [`Self::decide`]: the draft's seed size, or 0
    /// without joint randomness.
    pub fn check_len(&self) -> usize {
        match &self.draft {
            Draft::V18(a) => a.check_len(),
            Draft::V08(a) => a.check_len(),
        }
    }

    /// Intake: starts verification and finishes the output share provisionally.
    pub fn start(
        &self,
        verify_key: &[u8],
        input: &VerifyInput,
    ) -> Result<Provisional, VdafStepError> {
        match &self.draft {
            Draft::V18(a) => a.start(key::<VERIFY_KEY_LEN>(verify_key)?, &self.ctx, input),
            Draft::V08(a) => a.start(key::<{ vdaf08::VERIFY_KEY_LEN }>(verify_key)?, input),
        }
    }

    /// Aggregate: the verdict from both verifier shares (leader's first) and the check
    /// intake kept. Err(Verify) means the report is invalid.
    pub fn decide(&self, check: &[u8], shares: [&[u8]; 2]) -> Result<(), VdafStepError> {
        match &self.draft {
            Draft::V18(a) => a.decide(&self.ctx, check, shares),
            Draft::V08(a) => a.decide(check, shares),
        }
    }

    /// A sum of no reports.
    pub fn new_sum(&self) -> AggregateSum {
        self.empty.clone()
    }

    /// An encoded aggregate share of this task, as [`AggregateSum::encode`] wrote it.
    pub fn decode_sum(&self, bytes: &[u8]) -> Result<AggregateSum, VdafStepError> {
        match &self.draft {
            Draft::V18(a) => a.decode_sum(bytes),
            Draft::V08(a) => a.decode_sum(bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dap::task::{BatchMode, HpkeConfig, TaskId, TaskParams, VdafConfig};

    fn task(version: DapVersion, vdaf: VdafConfig) -> Task {
        let key = |id: u8| HpkeConfig::x25519(id, vec![id; 32]);
        Task::new(TaskParams {
            dap_version: version,
            task_id: TaskId([5; 32]),
            task_info: b"t".to_vec(),
            leader_aggregator_endpoint: "https://l/".into(),
            helper_aggregator_endpoint: "https://h/".into(),
            time_precision: 60,
            min_batch_size: 1,
            batch_mode: BatchMode::TimeInterval,
            vdaf,
            leader_hpke_config: key(1),
            helper_hpke_config: key(2),
            collector_hpke_config: key(3),
            dp: None,
        })
        .unwrap()
    }

    /// Both aggregators' halves over `measurements`, then the collector's result;
    /// `tamper` may spoil one report's helper input share.
    fn run(
        version: DapVersion,
        vdaf: VdafConfig,
        measurements: &[Measurement],
        spoil: Option<usize>,
    ) -> (AggregateResult, usize, [Vec<u8>; 2]) {
        let t = task(version, vdaf);
        let vdaf = TaskVdaf::new(&t).unwrap();
        let aggregators = [vdaf.aggregator(0).unwrap(), vdaf.aggregator(1).unwrap()];
        let key = vec![9u8; version.verify_key_len()];
        let mut sums = [aggregators[0].new_sum(), aggregators[1].new_sum()];
        let mut valid = 0;
        for (i, m) in measurements.iter().enumerate() {
            let nonce = [i as u8; NONCE_LEN];
            let mut shares = vdaf.shard(m, &nonce).unwrap();
            if spoil == Some(i) {
                // The helper's share is seeds: flipping one bit changes its whole share.
                shares.input_shares[1][0] ^= 1;
            }
            let started: Vec<Provisional> = (0..2)
                .map(|id| {
                    let input = VerifyInput {
                        agg_id: id,
                        nonce: &nonce,
                        public_share: &shares.public_share,
                        input_share: &shares.input_shares[id],
                    };
                    aggregators[id].start(&key, &input).unwrap()
                })
                .collect();
            let verifier = [
                &started[0].verifier_share[..],
                &started[1].verifier_share[..],
            ];
            let verdicts: Vec<bool> = (0..2)
                .map(|id| aggregators[id].decide(&started[id].check, verifier).is_ok())
                .collect();
            assert_eq!(verdicts[0], verdicts[1], "both servers agree on report {i}");
            if verdicts[0] {
                valid += 1;
                for id in 0..2 {
                    sums[id].add(&started[id].output).unwrap();
                }
            }
        }
        let encoded = [sums[0].encode().unwrap(), sums[1].encode().unwrap()];
        // What the collector reads back decodes as the task's sum.
        for (id, bytes) in encoded.iter().enumerate() {
            aggregators[id].decode_sum(bytes).unwrap();
        }
        let result = vdaf.unshard([&encoded[0], &encoded[1]], valid).unwrap();
        (result, valid, encoded)
    }

    #[test]
    fn every_vdaf_of_both_drafts_sums_to_the_truth() {
        use AggregateResult::{Integer, Vector};
        for version in [DapVersion::Dap09, DapVersion::Dap18] {
            let cases: Vec<(VdafConfig, Vec<Measurement>, AggregateResult)> = vec![
                (
                    VdafConfig::Count,
                    [true, false, true].map(Measurement::Count).to_vec(),
                    Integer(2),
                ),
                (
                    VdafConfig::from_spec("sum:255").unwrap(),
                    [200, 55, 1].map(Measurement::Sum).to_vec(),
                    Integer(256),
                ),
                (
                    VdafConfig::from_spec("sumvec:3:3").unwrap(),
                    vec![
                        Measurement::SumVec(vec![1, 2, 3]),
                        Measurement::SumVec(vec![3, 0, 1]),
                    ],
                    Vector(vec![4, 2, 4]),
                ),
                (
                    VdafConfig::from_spec("histogram:5").unwrap(),
                    [4, 0, 4, 2].map(Measurement::Histogram).to_vec(),
                    Vector(vec![1, 0, 1, 0, 2]),
                ),
            ];
            for (vdaf, measurements, truth) in cases {
                let name = format!("{} {}", version.label(), vdaf.spec());
                let (result, valid, _) = run(version, vdaf.clone(), &measurements, None);
                assert_eq!((result, valid), (truth, measurements.len()), "{name}");
                // One spoiled report: refused by both, the others still sum right.
                let (_, valid, _) = run(version, vdaf, &measurements, Some(1));
                assert_eq!(valid, measurements.len() - 1, "{name}");
            }
        }
    }

    #[test]
    fn noisy_shares_unshard_to_the_truth_plus_both_noises_below_zero_too() {
        for version in [DapVersion::Dap09, DapVersion::Dap18] {
            let cases = [
                (
                    VdafConfig::Count,
                    vec![Measurement::Count(true)],
                    vec![1i128],
                ),
                (
                    VdafConfig::from_spec("histogram:3").unwrap(),
                    [2, 2, 0].map(Measurement::Histogram).to_vec(),
                    vec![1, 0, 2],
                ),
            ];
            for (vdaf, measurements, truth) in cases {
                let t = task(version, vdaf.clone());
                let (_, _, encoded) = run(version, vdaf, &measurements, None);
                let noises = [[-5i64, 7, 0], [-3, -9, 4]];
                let noisy: Vec<Vec<u8>> = (0..2)
                    .map(|id| {
                        let aggregator = TaskVdaf::new(&t).unwrap().aggregator(id).unwrap();
                        let mut sum = aggregator.decode_sum(&encoded[id]).unwrap();
                        sum.add_noise(&noises[id][..truth.len()]).unwrap();
                        assert!(sum.add_noise(&[1; 4]).is_err(), "one value per position");
                        sum.encode().unwrap()
                    })
                    .collect();
                let values = TaskVdaf::new(&t)
                    .unwrap()
                    .unshard_signed([&noisy[0], &noisy[1]])
                    .unwrap();
                let expected: Vec<i128> = (0..truth.len())
                    .map(|i| truth[i] + i128::from(noises[0][i] + noises[1][i]))
                    .collect();
                assert_eq!(values, expected, "{}", version.label());
            }
        }
    }

    #[test]
    fn a_key_of_the_other_drafts_length_is_refused() {
        let t = task(DapVersion::Dap09, VdafConfig::Count);
        let vdaf = TaskVdaf::new(&t).unwrap();
        let shares = vdaf.shard(&Measurement::Count(true), &[0; 16]).unwrap();
        let input = VerifyInput {
            agg_id: 0,
            nonce: &[0; 16],
            public_share: &shares.public_share,
            input_share: &shares.input_shares[0],
        };
        let err = vdaf.aggregator(0).unwrap().start(&[0; 32], &input).err();
        assert!(
            matches!(&err, Some(VdafStepError::Params(m)) if m.contains("takes 16")),
            "{err:?}"
        );
    }
}

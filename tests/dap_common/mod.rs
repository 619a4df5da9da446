//! A DAP test task with fresh keys, shared by the DAP integration tests.

use divvi::dap::task::BatchMode;
use divvi::dap::{HpkeKeypair, Task, TaskId, TaskParams, VdafConfig};

/// The aggregators' and collector's key pairs of a [`test_task`].
pub struct Keys {
    pub leader: HpkeKeypair,
    pub helper: HpkeKeypair,
    pub collector: HpkeKeypair,
}

/// A task of `vdaf` with a random id and fresh X25519 keys (ids 1, 2, 3).
pub fn test_task(vdaf: VdafConfig, time_precision: u64) -> (Task, Keys) {
    test_task_for(divvi::dap::DapVersion::Dap18, vdaf, time_precision)
}

/// As [`test_task`], of DAP draft `version`.
pub fn test_task_for(
    version: divvi::dap::DapVersion,
    vdaf: VdafConfig,
    time_precision: u64,
) -> (Task, Keys) {
    let keys = Keys {
        leader: HpkeKeypair::generate(1).unwrap(),
        helper: HpkeKeypair::generate(2).unwrap(),
        collector: HpkeKeypair::generate(3).unwrap(),
    };
    let task = Task::new(TaskParams {
        dap_version: version,
        task_id: TaskId::random().unwrap(),
        task_info: b"divvi test".to_vec(),
        leader_aggregator_endpoint: "https://leader.example/".into(),
        helper_aggregator_endpoint: "https://helper.example/".into(),
        time_precision,
        min_batch_size: 1,
        batch_mode: BatchMode::TimeInterval,
        vdaf,
        leader_hpke_config: keys.leader.config().clone(),
        helper_hpke_config: keys.helper.config().clone(),
        collector_hpke_config: keys.collector.config().clone(),
        dp: None,
    })
    .unwrap();
    (task, keys)
}

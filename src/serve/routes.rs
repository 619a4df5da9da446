//! What `divvi serve` answers, as plain functions of the request (no sockets): the two
//! aggregators' HPKE config lists under `/leader/` and `/helper/` (a client is given one
//! URL per aggregator; both point here), report upload under the leader's URL, health
//! and readiness, and DAP problem documents for refusals.
//!
//! Upload accepts DAP-18's `POST {leader}/tasks/{task-id}/reports`, whose body is any
//! number of reports. A body that does not decode, or a task this server does not serve,
//! is refused whole; a report from too far in the future, or sealed to an HPKE config the
//! task does not name, is refused alone (the others are kept).

use crate::dap::{decode_reports, encode_reports, Report, Task};
use crate::stages::ingest_dap::{admit_report, Refusal};
use chrono::{DateTime, Utc};

/// DAP's media types.
pub const CONFIG_LIST_TYPE: &str = "application/dap-hpke-config-list";
pub const PROBLEM_TYPE: &str = "application/problem+json";

/// What a request comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Answer at once.
    Answer(Answer),
    /// Readiness: the server's state (draining, flush backlog) decides.
    Readiness,
    /// Reports to make durable, then answer `ok`; `refused` are those left out, with why.
    Upload {
        accepted: Vec<u8>,
        count: usize,
        refused: Vec<(String, Refusal)>,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers (caching, CORS preflight).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Answer {
    pub(super) fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Answer {
            status: 200,
            content_type,
            body,
            headers: Vec::new(),
        }
    }

    /// A problem document (RFC 9457) of DAP's error `kind` about task `taskid`
    /// (base64url). Deployed clients read `taskid`: @divviup/dap 0.9.1 fails on a
    /// problem document without one.
    pub fn problem(status: u16, kind: &str, taskid: &str, detail: &str) -> Self {
        let body = serde_json::json!({
            "type": format!("urn:ietf:params:ppm:dap:error:{kind}"),
            "title": kind,
            "status": status,
            "taskid": taskid,
            "detail": detail,
        });
        Answer {
            status,
            content_type: PROBLEM_TYPE,
            body: body.to_string().into_bytes(),
            headers: Vec::new(),
        }
    }

    /// Success with no body (DAP-18: an upload with no report refused).
    pub(super) fn empty() -> Self {
        Answer::ok("text/plain; charset=utf-8", Vec::new())
    }

    pub(super) fn plain(status: u16, text: &str) -> Self {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{text}\n").into_bytes(),
            headers: Vec::new(),
        }
    }

    /// A CORS preflight's answer: browsers may upload from any origin (no credentials).
    fn preflight(methods: &'static str) -> Self {
        Answer {
            status: 204,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            headers: vec![
                ("allow", methods),
                ("access-control-allow-methods", methods),
                ("access-control-allow-headers", "content-type"),
                ("access-control-max-age", "86400"),
            ],
        }
    }
}

/// The task served, with what answering needs precomputed.
pub struct Served {
    pub task: Task,
    /// The task id, base64url, as paths and problem documents carry it.
    pub task_id: String,
    /// The leader's and the helper's HPKE config lists, encoded.
    config_lists: [Vec<u8>; 2],
}

impl Served {
    pub fn new(task: Task) -> Result<Self, prio::codec::CodecError> {
        let params = task.params();
        let config_lists = [
            crate::dap::task::encode_config_list(std::slice::from_ref(&params.leader_hpke_config))?,
            crate::dap::task::encode_config_list(std::slice::from_ref(&params.helper_hpke_config))?,
        ];
        Ok(Served {
            task_id: task.task_id().to_base64url(),
            task,
            config_lists,
        })
    }
}

/// Routes one request. `path` excludes the query; `now` is the server's clock.
pub fn route(served: &Served, method: &str, path: &str, body: &[u8], now: DateTime<Utc>) -> Route {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["healthz"]) => Route::Answer(Answer::plain(200, "ok")),
        ("GET", ["readyz"]) => Route::Readiness,
        ("GET", [role @ ("leader" | "helper"), "hpke_config"]) => {
            let list = &served.config_lists[usize::from(*role == "helper")];
            let mut answer = Answer::ok(CONFIG_LIST_TYPE, list.clone());
            // Configs change rarely; clients cache them (D09 §4.4.1's example lifetime).
            answer.headers.push(("cache-control", "max-age=86400"));
            Route::Answer(answer)
        }
        ("OPTIONS", [_, "hpke_config"]) => Route::Answer(Answer::preflight("GET")),
        ("OPTIONS", ["leader", "tasks", _, "reports"]) => Route::Answer(Answer::preflight("POST")),
        ("POST", ["leader", "tasks", task_id, "reports"]) => upload(served, task_id, body, now),
        (_, ["leader", "tasks", _, "reports"]) | (_, [_, "hpke_config"]) => {
            Route::Answer(Answer::plain(405, "method not allowed"))
        }
        _ => Route::Answer(Answer::plain(404, "not found")),
    }
}

fn upload(served: &Served, task_id: &str, body: &[u8], now: DateTime<Utc>) -> Route {
    if task_id != served.task_id {
        return Route::Answer(Answer::problem(
            404,
            "unrecognizedTask",
            task_id,
            "this server takes reports of another task",
        ));
    }
    let invalid =
        |detail: &str| Route::Answer(Answer::problem(400, "invalidMessage", task_id, detail));
    let reports = match decode_reports(body) {
        Ok(reports) if !reports.is_empty() => reports,
        Ok(_) => return invalid("no reports"),
        Err(e) => return invalid(&e.to_string()),
    };
    let mut kept: Vec<Report> = Vec::with_capacity(reports.len());
    let mut refused = Vec::new();
    for report in reports {
        match admit_report(&served.task, &report, now) {
            Ok(()) => kept.push(report),
            Err(why) => refused.push((crate::batch::hex(&report.metadata.report_id.0), why)),
        }
    }
    match encode_reports(&kept) {
        Ok(accepted) => Route::Upload {
            accepted,
            count: kept.len(),
            refused,
        },
        Err(e) => invalid(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dap::{DapClient, Measurement, VdafConfig};

    fn served() -> (tempfile::TempDir, Served) {
        let dir = tempfile::tempdir().unwrap();
        let d = crate::demo::dap::deploy_task(
            &dir.path().join("d"),
            crate::crypto::PacketScheme::Hpke,
            "serve-test",
            &crate::keygen::Layout::Local,
            &VdafConfig::Count,
            1,
        )
        .unwrap();
        let task = Task::load(&d.dir.join("task.json")).unwrap();
        (dir, Served::new(task).unwrap())
    }

    #[test]
    fn both_config_lists_and_health_are_served() {
        let (_dir, s) = served();
        let now = Utc::now();
        for (role, config) in [
            ("leader", &s.task.params().leader_hpke_config),
            ("helper", &s.task.params().helper_hpke_config),
        ] {
            let Route::Answer(a) = route(&s, "GET", &format!("/{role}/hpke_config"), b"", now)
            else {
                panic!("an answer")
            };
            assert_eq!((a.status, a.content_type), (200, CONFIG_LIST_TYPE));
            assert_eq!(
                a.body,
                crate::dap::task::encode_config_list(std::slice::from_ref(config)).unwrap()
            );
        }
        assert!(
            matches!(route(&s, "GET", "/healthz", b"", now), Route::Answer(a) if a.status == 200)
        );
        assert_eq!(route(&s, "GET", "/readyz", b"", now), Route::Readiness);
        assert!(matches!(route(&s, "GET", "/nope", b"", now), Route::Answer(a) if a.status == 404));
        assert!(
            matches!(route(&s, "DELETE", "/leader/hpke_config", b"", now), Route::Answer(a) if a.status == 405)
        );
    }

    #[test]
    fn an_upload_keeps_good_reports_and_names_the_refused_ones() {
        let (_dir, s) = served();
        let now = Utc::now();
        let client = DapClient::new(&s.task).unwrap();
        let t = now.timestamp() as u64;
        let good = client.report(&Measurement::Count(true), t).unwrap();
        let future = client
            .report(&Measurement::Count(true), t + 3600 * 24)
            .unwrap();
        let body = encode_reports(&[good.clone(), future.clone()]).unwrap();
        let path = format!("/leader/tasks/{}/reports", s.task.task_id().to_base64url());
        match route(&s, "POST", &path, &body, now) {
            Route::Upload {
                accepted,
                count,
                refused,
            } => {
                assert_eq!(count, 1);
                assert_eq!(accepted, encode_reports(&[good]).unwrap());
                assert_eq!(refused.len(), 1);
                assert_eq!(
                    refused[0].0,
                    crate::batch::hex(&future.metadata.report_id.0)
                );
                assert!(matches!(refused[0].1, Refusal::TooEarly { .. }));
            }
            other => panic!("{other:?}"),
        }
        // Another task, or a body that does not decode: refused whole.
        let other = "/leader/tasks/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/reports";
        let Route::Answer(a) = route(&s, "POST", other, &body, now) else {
            panic!()
        };
        assert_eq!(a.status, 404);
        let problem: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(
            problem["type"],
            "urn:ietf:params:ppm:dap:error:unrecognizedTask"
        );
        assert_eq!(
            problem["taskid"],
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
        // A browser asks first.
        let Route::Answer(a) = route(&s, "OPTIONS", &path, b"", now) else {
            panic!()
        };
        assert_eq!(a.status, 204);
        assert!(a
            .headers
            .contains(&("access-control-allow-methods", "POST")));
        let Route::Answer(a) = route(&s, "POST", &path, &body[..body.len() - 1], now) else {
            panic!()
        };
        assert_eq!((a.status, a.content_type), (400, PROBLEM_TYPE));
    }
}

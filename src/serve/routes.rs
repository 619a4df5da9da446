//! What `divvi serve` answers, as plain functions of the request (no sockets): the two
//! aggregators' HPKE config lists under `/leader/` and `/helper/` (a client is given one
//! URL per aggregator; both point here), report upload under the leader's URL, health
//! and readiness, and DAP problem documents for refusals.
//!
//! Upload takes what the task's DAP draft defines. DAP-18: `POST {leader}/tasks/{task-id}
//! /reports`, whose body is any number of reports; a body that does not decode, or a task
//! this server does not serve, is refused whole; a report from too far in the future, or
//! sealed to an HPKE config the task does not name, is refused alone (the others are
//! kept) and named in the 200 answer's `UploadErrors` body with its `ReportError`.
//! DAP-09: `PUT` of one report, answered 201 Created, or a problem document of DAP-09's
//! (`reportTooEarly`, `outdatedConfig`, which makes clients fetch the configs again and
//! retry once). An upload must carry its draft's media type (415 otherwise), and a
//! DAP-09 config request naming another task (`?task_id=`) is `unrecognizedTask`.

use crate::dap::{decode_reports, encode_reports, DapVersion, Report, Task};
use crate::stages::ingest_dap::{admit_report, Refusal};
use chrono::{DateTime, Utc};

/// DAP's media types: DAP-09's HPKE config list (deployed clients compare it exactly),
/// DAP-18's, and problem documents (RFC 9457).
pub const CONFIG_LIST_TYPE_09: &str = "application/dap-hpke-config-list";
pub const CONFIG_LIST_TYPE_18: &str = "application/ppm-dap;message=hpke-config-list";
pub const PROBLEM_TYPE: &str = "application/problem+json";
/// DAP-18's answer naming the reports of an upload that were refused.
pub const UPLOAD_ERRORS_TYPE: &str = "application/ppm-dap;message=upload-errors";

/// What an upload carries: DAP-09 one report, DAP-18 an `UploadRequest`.
pub const REPORT_TYPE_09: &str = "application/dap-report";
pub const UPLOAD_REQUEST_TYPE_18: &str = "application/ppm-dap;message=upload-req";

/// The upload's media type in `version`.
pub fn upload_type(version: DapVersion) -> &'static str {
    match version {
        DapVersion::Dap09 => REPORT_TYPE_09,
        DapVersion::Dap18 => UPLOAD_REQUEST_TYPE_18,
    }
}

/// Whether a Content-Type names `want`: case and the spaces around `;` do not matter
/// (RFC 9110 §8.3.1).
fn is_media_type(given: &str, want: &str) -> bool {
    let canonical = |t: &str| -> Vec<String> {
        t.split(';')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect()
    };
    canonical(given) == canonical(want)
}

/// One request, as routing sees it: no headers but the Content-Type.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// The HPKE config list's media type in `version`.
pub fn config_list_type(version: DapVersion) -> &'static str {
    match version {
        DapVersion::Dap09 => CONFIG_LIST_TYPE_09,
        DapVersion::Dap18 => CONFIG_LIST_TYPE_18,
    }
}

/// What a request comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Answer at once.
    Answer(Answer),
    /// Readiness: the server's state (draining, flush backlog) decides.
    Readiness,
    /// `count` reports to make durable (`accepted`, encoded), then `answer`; `refused`
    /// are those left out (report id in hex, and why), for logs and metrics.
    Upload {
        accepted: Vec<u8>,
        count: usize,
        refused: Vec<(String, Refusal)>,
        answer: Answer,
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

    /// Success with no body (an upload with no report refused).
    pub(super) fn empty(status: u16) -> Self {
        Answer {
            status,
            ..Answer::ok("text/plain; charset=utf-8", Vec::new())
        }
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

/// Routes one request; `now` is the server's clock.
pub fn route(served: &Served, request: &Request, now: DateTime<Utc>) -> Route {
    let Request {
        method, path, body, ..
    } = *request;
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let version = served.task.version();
    // DAP-09 uploads one report with PUT, DAP-18 many with POST.
    let upload_method = match version {
        DapVersion::Dap09 => "PUT",
        DapVersion::Dap18 => "POST",
    };
    match (method, parts.as_slice()) {
        ("GET", ["healthz"]) => Route::Answer(Answer::plain(200, "ok")),
        ("GET", ["readyz"]) => Route::Readiness,
        ("GET", [role @ ("leader" | "helper"), "hpke_config"]) => {
            // DAP-09 clients name the task they want the configs of.
            let asked = request.query.into_iter().flat_map(|q| q.split('&'));
            if let Some(other) = asked
                .filter_map(|pair| pair.strip_prefix("task_id="))
                .find(|id| *id != served.task_id)
            {
                return unrecognized_task(other);
            }
            let list = &served.config_lists[usize::from(*role == "helper")];
            let mut answer = Answer::ok(config_list_type(version), list.clone());
            // Configs change rarely; clients cache them (D09 §4.4.1's example lifetime).
            answer.headers.push(("cache-control", "max-age=86400"));
            Route::Answer(answer)
        }
        ("OPTIONS", [_, "hpke_config"]) => Route::Answer(Answer::preflight("GET")),
        ("OPTIONS", ["leader", "tasks", _, "reports"]) => {
            Route::Answer(Answer::preflight(upload_method))
        }
        (m, ["leader", "tasks", task_id, "reports"]) if m == upload_method => {
            let want = upload_type(version);
            match request.content_type {
                Some(given) if is_media_type(given, want) => {}
                given => {
                    let detail = format!(
                        "an upload is {want}, not {}",
                        given.unwrap_or("without a content type")
                    );
                    return Route::Answer(Answer::problem(415, "invalidMessage", task_id, &detail));
                }
            }
            match version {
                DapVersion::Dap09 => upload_one(served, task_id, body, now),
                DapVersion::Dap18 => upload(served, task_id, body, now),
            }
        }
        (_, ["leader", "tasks", _, "reports"]) | (_, [_, "hpke_config"]) => {
            Route::Answer(Answer::plain(405, "method not allowed"))
        }
        _ => Route::Answer(Answer::plain(404, "not found")),
    }
}

/// The problem of an upload for a task this server does not serve.
fn unrecognized_task(task_id: &str) -> Route {
    Route::Answer(Answer::problem(
        404,
        "unrecognizedTask",
        task_id,
        "this server takes reports of another task",
    ))
}

/// DAP-09: one report, taken whole or refused with the problem type its clients know.
fn upload_one(served: &Served, task_id: &str, body: &[u8], now: DateTime<Utc>) -> Route {
    if task_id != served.task_id {
        return unrecognized_task(task_id);
    }
    let problem =
        |kind: &str, detail: &str| Route::Answer(Answer::problem(400, kind, task_id, detail));
    let version = served.task.version();
    let report = match Report::from_bytes(version, body) {
        Ok(report) => report,
        Err(e) => return problem("invalidMessage", &e.to_string()),
    };
    match admit_report(&served.task, &report, now) {
        Ok(()) => Route::Upload {
            accepted: body.to_vec(),
            count: 1,
            refused: Vec::new(),
            answer: Answer::empty(201),
        },
        Err(why) => {
            let kind = match why {
                Refusal::TooEarly { .. } => "reportTooEarly",
                Refusal::UnknownConfig { .. } => "outdatedConfig",
            };
            Route::Upload {
                accepted: Vec::new(),
                count: 0,
                answer: Answer::problem(400, kind, task_id, &why.to_string()),
                refused: vec![(crate::batch::hex(&report.metadata.report_id.0), why)],
            }
        }
    }
}

/// DAP-18's `ReportError` for a report refused at upload (D18 §4.4.2): an HPKE config the
/// task does not name is `outdated_config`, on which clients fetch the configs again.
fn report_error(why: &Refusal) -> u8 {
    match why {
        Refusal::TooEarly { .. } => 9,
        Refusal::UnknownConfig { .. } => 11,
    }
}

/// DAP-18: any number of reports; each refused one is named, the others kept.
fn upload(served: &Served, task_id: &str, body: &[u8], now: DateTime<Utc>) -> Route {
    if task_id != served.task_id {
        return unrecognized_task(task_id);
    }
    let version = served.task.version();
    let invalid =
        |detail: &str| Route::Answer(Answer::problem(400, "invalidMessage", task_id, detail));
    let reports = match decode_reports(version, body) {
        Ok(reports) if !reports.is_empty() => reports,
        Ok(_) => return invalid("no reports"),
        Err(e) => return invalid(&e.to_string()),
    };
    let mut kept: Vec<Report> = Vec::with_capacity(reports.len());
    let mut refused = Vec::new();
    // UploadErrors: each refused report's id and ReportError, in request order.
    let mut errors = Vec::new();
    for report in reports {
        match admit_report(&served.task, &report, now) {
            Ok(()) => kept.push(report),
            Err(why) => {
                let id = &report.metadata.report_id.0;
                errors.extend_from_slice(id);
                errors.push(report_error(&why));
                refused.push((crate::batch::hex(id), why));
            }
        }
    }
    if errors.is_empty() {
        // Every report kept: the body, which decoded whole, is their encoding already.
        return Route::Upload {
            accepted: body.to_vec(),
            count: kept.len(),
            refused,
            answer: Answer::empty(200),
        };
    }
    let answer = Answer::ok(UPLOAD_ERRORS_TYPE, errors);
    match encode_reports(version, &kept) {
        Ok(accepted) => Route::Upload {
            accepted,
            count: kept.len(),
            refused,
            answer,
        },
        Err(e) => invalid(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dap::DapVersion;
    use crate::dap::{DapClient, Measurement, VdafConfig};

    /// A request with the media type an upload of its method carries.
    fn req<'a>(method: &'a str, path: &'a str, body: &'a [u8]) -> Request<'a> {
        let content_type = match method {
            "PUT" => Some(REPORT_TYPE_09),
            "POST" => Some(UPLOAD_REQUEST_TYPE_18),
            _ => None,
        };
        Request {
            method,
            path,
            query: None,
            content_type,
            body,
        }
    }

    fn served() -> (tempfile::TempDir, Served) {
        let dir = tempfile::tempdir().unwrap();
        let d = crate::demo::dap::deploy_task(
            &dir.path().join("d"),
            crate::crypto::PacketScheme::Hpke,
            "serve-test",
            &crate::keygen::Layout::Local,
            (DapVersion::Dap18, &VdafConfig::Count),
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
            let Route::Answer(a) =
                route(&s, &req("GET", &format!("/{role}/hpke_config"), b""), now)
            else {
                panic!("an answer")
            };
            assert_eq!((a.status, a.content_type), (200, CONFIG_LIST_TYPE_18));
            assert_eq!(
                a.body,
                crate::dap::task::encode_config_list(std::slice::from_ref(config)).unwrap()
            );
        }
        assert!(
            matches!(route(&s, &req("GET", "/healthz", b""), now), Route::Answer(a) if a.status == 200)
        );
        assert_eq!(
            route(&s, &req("GET", "/readyz", b""), now),
            Route::Readiness
        );
        assert!(
            matches!(route(&s, &req("GET", "/nope", b""), now), Route::Answer(a) if a.status == 404)
        );
        assert!(
            matches!(route(&s, &req("DELETE", "/leader/hpke_config", b""), now), Route::Answer(a) if a.status == 405)
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
        let body = encode_reports(DapVersion::Dap18, &[good.clone(), future.clone()]).unwrap();
        let path = format!("/leader/tasks/{}/reports", s.task.task_id().to_base64url());
        match route(&s, &req("POST", &path, &body), now) {
            Route::Upload {
                accepted,
                count,
                refused,
                answer,
            } => {
                // UploadErrors: the refused report's id, then report_too_early (9).
                assert_eq!(
                    (answer.status, answer.content_type),
                    (200, UPLOAD_ERRORS_TYPE)
                );
                assert_eq!(
                    answer.body,
                    [&future.metadata.report_id.0[..], &[9]].concat()
                );
                assert_eq!(count, 1);
                assert_eq!(
                    accepted,
                    encode_reports(DapVersion::Dap18, &[good]).unwrap()
                );
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
        let Route::Answer(a) = route(&s, &req("POST", other, &body), now) else {
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
        let Route::Answer(a) = route(&s, &req("OPTIONS", &path, b""), now) else {
            panic!()
        };
        assert_eq!(a.status, 204);
        assert!(a
            .headers
            .contains(&("access-control-allow-methods", "POST")));
        let Route::Answer(a) = route(&s, &req("POST", &path, &body[..body.len() - 1]), now) else {
            panic!()
        };
        assert_eq!((a.status, a.content_type), (400, PROBLEM_TYPE));
    }

    /// The same task as [`served`], as DAP-09 (what deployed clients speak).
    fn served_dap09() -> (tempfile::TempDir, Served) {
        let (dir, s) = served();
        let mut params = s.task.params().clone();
        params.dap_version = DapVersion::Dap09;
        (dir, Served::new(Task::new(params).unwrap()).unwrap())
    }

    /// A problem document's status, type and task id, answered at once or once the
    /// upload's accepted reports (none) are durable.
    fn problem_type(route: Route) -> (u16, String, String) {
        let a = match route {
            Route::Answer(a) => a,
            Route::Upload {
                answer, count: 0, ..
            } => answer,
            other => panic!("a problem, got {other:?}"),
        };
        assert_eq!(a.content_type, PROBLEM_TYPE);
        let problem: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        let kind = problem["type"].as_str().unwrap();
        let kind = kind.strip_prefix("urn:ietf:params:ppm:dap:error:").unwrap();
        (a.status, kind.to_string(), problem["taskid"].to_string())
    }

    #[test]
    fn an_upload_must_carry_its_drafts_media_type() {
        let (_dir, s) = served();
        let now = Utc::now();
        let report = DapClient::new(&s.task)
            .unwrap()
            .report(&Measurement::Count(true), now.timestamp() as u64)
            .unwrap();
        let body = encode_reports(DapVersion::Dap18, &[report]).unwrap();
        let path = format!("/leader/tasks/{}/reports", s.task_id);
        let with = |content_type: Option<&'static str>| {
            let request = Request {
                content_type,
                ..req("POST", &path, &body)
            };
            match route(&s, &request, now) {
                Route::Answer(a) => a.status,
                Route::Upload { answer, .. } => answer.status,
                Route::Readiness => 0,
            }
        };
        assert_eq!(with(Some(UPLOAD_REQUEST_TYPE_18)), 200);
        assert_eq!(with(Some("Application/PPM-DAP; message=upload-req")), 200);
        for wrong in [None, Some("application/dap-report"), Some("text/plain")] {
            assert_eq!(with(wrong), 415, "{wrong:?}");
        }
    }

    #[test]
    fn a_dap09_task_takes_one_report_per_put_and_answers_in_dap09s_terms() {
        let (_dir, s) = served_dap09();
        let now = Utc::now();
        let Route::Answer(a) = route(&s, &req("GET", "/leader/hpke_config", b""), now) else {
            panic!()
        };
        // @divviup/dap 0.9.1 compares this type exactly.
        assert_eq!((a.status, a.content_type), (200, CONFIG_LIST_TYPE_09));
        // A client may name the task it wants the configs of: another one is unknown here.
        let asking = |task_id: &str| {
            let query = format!("task_id={task_id}");
            let request = Request {
                query: Some(&query),
                ..req("GET", "/leader/hpke_config", b"")
            };
            route(&s, &request, now)
        };
        assert!(matches!(asking(&s.task_id), Route::Answer(a) if a.status == 200));
        let other = crate::dap::TaskId([1; 32]).to_base64url();
        let Route::Answer(a) = asking(&other) else {
            panic!()
        };
        assert_eq!((a.status, a.content_type), (404, PROBLEM_TYPE));
        let client = DapClient::new(&s.task).unwrap();
        let t = now.timestamp() as u64;
        let report = client.report(&Measurement::Count(true), t).unwrap();
        assert_eq!(
            report.metadata.time,
            t - t % 3600,
            "DAP-09 times are seconds"
        );
        let body = report.to_bytes(DapVersion::Dap09).unwrap();
        let path = format!("/leader/tasks/{}/reports", s.task_id);
        match route(&s, &req("PUT", &path, &body), now) {
            Route::Upload {
                accepted,
                count,
                refused,
                answer,
            } => {
                assert_eq!((answer.status, count), (201, 1));
                assert_eq!(accepted, body);
                assert!(refused.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // DAP-18's method is not this task's.
        assert!(
            matches!(route(&s, &req("POST", &path, &body), now), Route::Answer(a) if a.status == 405)
        );
        let Route::Answer(a) = route(&s, &req("OPTIONS", &path, b""), now) else {
            panic!()
        };
        assert!(a.headers.contains(&("access-control-allow-methods", "PUT")));
        // Refusals are problem documents of DAP-09's types, naming the task.
        let taskid = format!("{:?}", s.task_id);
        let future = client
            .report(&Measurement::Count(true), t + 3600 * 24)
            .unwrap();
        let put = |r: &Report| {
            let bytes = r.to_bytes(DapVersion::Dap09).unwrap();
            route(&s, &req("PUT", &path, &bytes), now)
        };
        assert_eq!(
            problem_type(put(&future)),
            (400, "reportTooEarly".into(), taskid.clone())
        );
        let mut outdated = report.clone();
        outdated.helper_encrypted_input_share.config_id ^= 0x40;
        assert_eq!(
            problem_type(put(&outdated)),
            (400, "outdatedConfig".into(), taskid.clone())
        );
        // Two reports in one body, or a DAP-18 report: not one DAP-09 report.
        let two = [body.clone(), body.clone()].concat();
        let d18 = report.to_bytes(DapVersion::Dap18).unwrap();
        for bad in [two, d18] {
            assert_eq!(
                problem_type(route(&s, &req("PUT", &path, &bad), now)),
                (400, "invalidMessage".into(), taskid.clone())
            );
        }
    }
}

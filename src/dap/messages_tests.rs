use super::*;

fn metadata() -> ReportMetadata {
    ReportMetadata {
        report_id: ReportId([0xaa; 16]),
        time: 0x0102,
    }
}

fn report(public_share: Vec<u8>) -> Report {
    let ct = |id: u8| HpkeCiphertext {
        config_id: id,
        enc: vec![id; 32],
        payload: vec![id, 0xff, id],
    };
    Report {
        metadata: metadata(),
        public_share,
        leader_encrypted_input_share: ct(1),
        helper_encrypted_input_share: ct(2),
    }
}

#[test]
fn metadata_has_exact_bytes() {
    let bytes = metadata().to_bytes(DapVersion::Dap18);
    let expected = [&[0xaa; 16][..], &[0, 0, 0, 0, 0, 0, 1, 2], &[0, 0]].concat();
    assert_eq!(bytes, expected);
    assert_eq!(
        ReportMetadata::from_bytes(DapVersion::Dap18, &bytes).unwrap(),
        metadata()
    );
}

#[test]
fn metadata_with_a_public_extension_is_refused() {
    let mut bytes = metadata().to_bytes(DapVersion::Dap18);
    bytes.truncate(24);
    bytes.extend([0, 4, 0, 9, 0, 0]); // one extension of type 9, empty
    let err = ReportMetadata::from_bytes(DapVersion::Dap18, &bytes).unwrap_err();
    assert!(
        err.to_string().contains("unsupported public extension"),
        "{err}"
    );
}

#[test]
fn report_round_trips_and_has_exact_layout() {
    let r = report(vec![5, 6]);
    let bytes = r.to_bytes(DapVersion::Dap18).unwrap();
    let ct = |id: u8| [&[id, 0, 32][..], &[id; 32], &[0, 0, 0, 3, id, 0xff, id]].concat();
    let expected = [
        metadata().to_bytes(DapVersion::Dap18),
        vec![0, 0, 0, 2, 5, 6],
        ct(1),
        ct(2),
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(Report::from_bytes(DapVersion::Dap18, &bytes).unwrap(), r);
    // An empty public share is legal (Prio3 without joint randomness).
    let empty = report(vec![]);
    assert_eq!(
        Report::from_bytes(
            DapVersion::Dap18,
            &empty.to_bytes(DapVersion::Dap18).unwrap()
        )
        .unwrap(),
        empty
    );
}

#[test]
fn truncated_and_trailing_reports_are_refused() {
    let bytes = report(vec![5, 6]).to_bytes(DapVersion::Dap18).unwrap();
    for n in 0..bytes.len() {
        assert!(
            Report::from_bytes(DapVersion::Dap18, &bytes[..n]).is_err(),
            "prefix of {n} bytes"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    let err = Report::from_bytes(DapVersion::Dap18, &long).unwrap_err();
    assert!(
        matches!(err, WireError::TrailingBytes { count: 1, .. }),
        "{err}"
    );
}

#[test]
fn out_of_range_lengths_are_refused() {
    let mut r = report(vec![]);
    r.leader_encrypted_input_share.enc.clear();
    let err =
        Report::from_bytes(DapVersion::Dap18, &r.to_bytes(DapVersion::Dap18).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::BadLength {
                field: "enc",
                len: 0,
                ..
            }
        ),
        "{err}"
    );

    let mut r = report(vec![]);
    r.helper_encrypted_input_share.payload.clear();
    let err =
        Report::from_bytes(DapVersion::Dap18, &r.to_bytes(DapVersion::Dap18).unwrap()).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::BadLength {
                field: "payload",
                ..
            }
        ),
        "{err}"
    );

    // A length prefix that runs past the end.
    let mut bytes = report(vec![]).to_bytes(DapVersion::Dap18).unwrap();
    bytes[26..30].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = Report::from_bytes(DapVersion::Dap18, &bytes).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::Truncated {
                field: "public_share",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn upload_requests_decode_to_the_end_and_name_the_bad_report() {
    let one = report(vec![1]).to_bytes(DapVersion::Dap18).unwrap();
    let body = encode_reports(DapVersion::Dap18, &[report(vec![1]), report(vec![])]).unwrap();
    let reports = decode_reports(DapVersion::Dap18, &body).unwrap();
    assert_eq!(reports, [report(vec![1]), report(vec![])]);
    assert!(decode_reports(DapVersion::Dap18, &[]).unwrap().is_empty());

    let err = decode_reports(DapVersion::Dap18, &body[..body.len() - 1]).unwrap_err();
    match &err {
        WireError::InReport { index, offset, .. } => {
            assert_eq!((*index, *offset), (1, one.len()));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("report 1"), "{err}");
}

#[test]
fn plaintext_input_share_bytes() {
    let share = PlaintextInputShare {
        payload: vec![9, 8],
    };
    let bytes = share.to_bytes().unwrap();
    assert_eq!(bytes, [0, 0, 0, 0, 0, 2, 9, 8]);
    assert_eq!(PlaintextInputShare::from_bytes(&bytes).unwrap(), share);
    let err = PlaintextInputShare::from_bytes(&[0, 4, 0, 1, 0, 0, 0, 0, 0, 1, 9]).unwrap_err();
    assert!(err.to_string().contains("private extension"), "{err}");
    assert!(PlaintextInputShare::from_bytes(&[0, 0, 0, 0, 0, 0]).is_err());
    assert!(PlaintextInputShare::from_bytes(&[0, 0, 0, 0, 0, 1, 9, 9]).is_err());
}

#[test]
fn input_share_aad_layout() {
    let task_id = TaskId([3; 32]);
    let aad = InputShareAad {
        task_id: &task_id,
        version: DapVersion::Dap18,
        task_binding: &[0xc0, 0xde],
        metadata: &metadata(),
        public_share: &[7],
    };
    let expected = [
        &[3u8; 32][..],
        &[0xc0, 0xde],
        &metadata().to_bytes(DapVersion::Dap18),
        &[0, 0, 0, 1, 7],
    ]
    .concat();
    assert_eq!(aad.to_bytes().unwrap(), expected);
}

#[test]
fn dap09_metadata_has_no_extensions_field() {
    let bytes = metadata().to_bytes(DapVersion::Dap09);
    assert_eq!(bytes, [&[0xaa; 16][..], &[0, 0, 0, 0, 0, 0, 1, 2]].concat());
    assert_eq!(
        ReportMetadata::from_bytes(DapVersion::Dap09, &bytes).unwrap(),
        metadata()
    );
    // A DAP-09 report is the DAP-18 one without the two bytes of public extensions.
    let r = report(vec![5, 6]);
    let d09 = r.to_bytes(DapVersion::Dap09).unwrap();
    let d18 = r.to_bytes(DapVersion::Dap18).unwrap();
    assert_eq!([&d18[..24], &d18[26..]].concat(), d09);
    assert_eq!(Report::from_bytes(DapVersion::Dap09, &d09).unwrap(), r);
    // Read with the other draft's layout, neither decodes whole.
    assert!(Report::from_bytes(DapVersion::Dap18, &d09).is_err());
    assert!(Report::from_bytes(DapVersion::Dap09, &d18).is_err());
}

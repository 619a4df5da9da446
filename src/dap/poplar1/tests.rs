use super::*;

#[test]
fn passes_go_deeper_and_extend_the_last_ones_prefixes() {
    let p = |bits: &str| Prefix::from_bools(&bits.chars().map(|c| c == '1').collect::<Vec<_>>());
    let first = Pass::new(vec![p("0"), p("1")]).unwrap();
    let second = Pass::new(vec![p("01"), p("11")]).unwrap();
    assert!(first.may_follow(&[]));
    assert!(second.may_follow(std::slice::from_ref(&first)));
    // Not deeper; a prefix not extending a kept one; back up the tree.
    assert!(!first.may_follow(std::slice::from_ref(&first)));
    let only_one = Pass::new(vec![p("1")]).unwrap();
    assert!(!Pass::new(vec![p("00")])
        .unwrap()
        .may_follow(std::slice::from_ref(&Pass::new(vec![p("1")]).unwrap())));
    assert!(!only_one.may_follow(std::slice::from_ref(&second)));
    // The encoding round-trips and refuses repeats and mixed lengths.
    assert_eq!(Pass::decode(&second.encode().unwrap()).unwrap(), second);
    assert!(Pass::new(vec![p("01"), p("01")]).is_err());
    assert!(Pass::new(vec![p("01"), p("1")]).is_err());
    assert!(Pass::new(vec![]).is_err());
}

#[test]
fn prefixes_extend_in_order_and_read_as_text() {
    let root = Prefix::from_bools(&[]);
    let kids: Vec<String> = root.children(2).map(|p| p.bit_string()).collect();
    assert_eq!(kids, ["00", "01", "10", "11"]);
    let word = Prefix::from_bytes(b"hi\0\0");
    assert_eq!(word.text().as_deref(), Some("hi"));
    assert_eq!(word.to_string(), "\"hi\"");
    assert_eq!(word.truncate(4).to_string(), "0b0110");
    assert_eq!(word.truncate(4).text(), None);
}

#[test]
fn strings_too_long_for_the_task_are_refused() {
    let poplar = Poplar1Vdaf::with_params(16, Vec::new());
    assert!(poplar.shard(b"abc", &[0; 16]).is_err());
    assert_eq!(
        poplar.input_of(b"a").unwrap(),
        Prefix::from_bytes(&[b'a', 0])
    );
}

#[test]
fn a_pass_beyond_the_tree_is_refused() {
    let poplar = Poplar1Vdaf::with_params(2, Vec::new());
    let pass = Pass::new(vec![Prefix::from_bools(&[true, true, true])]).unwrap();
    assert!(matches!(
        poplar.aggregator(0).unwrap().new_sum(&pass),
        Err(VdafStepError::Params(_))
    ));
    assert!(Traversal::new(8, 0, 1).is_err());
    assert!(Traversal::new(8, 1, 9).is_err());
}

#[test]
fn noisy_counts_read_back_signed_at_inner_and_leaf_levels() {
    let poplar = Poplar1Vdaf::with_params(8, Vec::new());
    let bits = |n: usize, v: bool| Prefix::from_bools(&vec![v; n]);
    for level in [3, 7] {
        let pass = Pass::new(vec![bits(level + 1, false), bits(level + 1, true)]).unwrap();
        let sums = [0, 1].map(|agg| {
            let mut sum = poplar.aggregator(agg).unwrap().new_sum(&pass).unwrap();
            // Each server adds its own noise to its (here empty) share.
            sum.add_noise(&[[-5, 7], [2, -9]][agg]).unwrap();
            sum.encode().unwrap()
        });
        let counts = poplar.unshard_signed(&pass, [&sums[0], &sums[1]]).unwrap();
        assert_eq!(counts, vec![-3, -2], "level {level}");
        let mut sum = poplar.aggregator(0).unwrap().new_sum(&pass).unwrap();
        assert!(sum.add_noise(&[1]).is_err(), "one value for two counts");
    }
}

#[test]
fn state_lengths_are_those_of_real_reports() {
    let poplar = Poplar1Vdaf::with_params(16, Vec::new());
    let shares = poplar.shard(b"hi", &[7; 16]).unwrap();
    for level in [0, 9, 15] {
        let pass = Pass::new(vec![Prefix::from_bools(&vec![false; level + 1])]).unwrap();
        let servers = [0, 1].map(|agg| poplar.aggregator(agg).unwrap());
        let firsts = [0, 1].map(|agg| {
            servers[agg]
                .start(
                    &[3; 32],
                    &pass,
                    &[7; 16],
                    &shares.public_share,
                    &shares.input_shares[agg],
                )
                .unwrap()
        });
        let second = servers[1]
            .second(
                &pass,
                &firsts[1].state,
                [&firsts[0].verifier_share, &firsts[1].verifier_share],
            )
            .unwrap();
        assert_eq!(
            servers[1].state_lens(&pass).unwrap(),
            [firsts[1].state.len(), second.state.len()],
            "level {level}"
        );
    }
}

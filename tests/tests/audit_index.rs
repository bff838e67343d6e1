//! The delivery log's index by case and message through a real relay: a query naming a case or
//! a message answers exactly what the scan of the whole log answers (same events, same pages),
//! a party still sees only its own events, a party's case is found however long the log
//! between, and a database without the index (older, or a build cut short) gets it at start.

use std::time::Duration;

use silta_client::Connection;
use silta_proto::pb::{self, MessageKind};
use silta_tests::{TestPki, TestRelay, envelope, take_items};

const NAS: &str = "assistance/nas";

fn query(filter: pb::QueryFilter, page_size: u32, page_token: String) -> pb::QueryRequest {
    pb::QueryRequest {
        filter: Some(filter),
        purpose: "index test".into(),
        purpose_code: pb::PurposeCode::Supervision.into(),
        page_size,
        page_token,
    }
}

/// Every page of `filter` for `conn`, as (events, tokens handed out). Bounded.
async fn all_pages(
    conn: &Connection,
    filter: &pb::QueryFilter,
    page_size: u32,
) -> (Vec<pb::Event>, Vec<String>) {
    let (mut events, mut tokens) = (Vec::new(), Vec::new());
    let mut token = String::new();
    for _ in 0..1000 {
        let page = conn
            .audit()
            .query(query(filter.clone(), page_size, token))
            .await
            .unwrap()
            .into_inner();
        assert!(page.events.len() <= page_size as usize);
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return (events, tokens);
        }
        tokens.push(page.next_page_token.clone());
        token = page.next_page_token;
    }
    panic!("the query did not end within 1000 pages");
}

/// What the scan of the whole log gives `conn` for the case (or message) of `filter`: every
/// page of the same filter without the case and message, filtered here.
async fn scanned(conn: &Connection, filter: &pb::QueryFilter) -> Vec<pb::Event> {
    let wide = pb::QueryFilter {
        case_ref: Vec::new(),
        message_id: Vec::new(),
        ..filter.clone()
    };
    all_pages(conn, &wide, 500)
        .await
        .0
        .into_iter()
        .filter(|e| filter.case_ref.is_empty() || e.case_ref == filter.case_ref)
        .filter(|e| filter.message_id.is_empty() || e.message_id == filter.message_id)
        .collect()
}

struct Loaded {
    centres: Vec<Connection>,
    auditor: Connection,
    /// Per centre, its cases, each with its envelopes.
    cases: Vec<Vec<(Vec<u8>, Vec<pb::Envelope>)>>,
}

/// Three centres, each with three cases of three referrals to the Assistance System, which
/// receives them all (DELIVERED) and acknowledges some (ACKNOWLEDGED).
async fn load(pki: &TestPki, relay: &TestRelay) -> Loaded {
    let (nas, keys) = relay.connect_with_keys(pki, NAS).await;
    let auditor = relay.connect_as(pki, "auditor/dpo").await;
    let mut centres = Vec::new();
    let mut cases = Vec::new();
    let mut sent = Vec::new();
    for c in 0..3 {
        let centre = relay.connect_as(pki, &format!("centre/c{c}")).await;
        let mut mine = Vec::new();
        for k in 0..3 {
            let case = silta_tests::case_ref();
            let mut envs = Vec::new();
            for m in 0..3 {
                let mut env = envelope(
                    MessageKind::Referral,
                    &[NAS],
                    format!("c{c} k{k} m{m}").as_bytes(),
                );
                env.case_ref = case.clone();
                centre.mailbox().send(env.clone()).await.unwrap();
                sent.push(env.clone());
                envs.push(env);
            }
            mine.push((case, envs));
        }
        centres.push(centre);
        cases.push(mine);
    }
    let mut stream = nas
        .mailbox()
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let got = take_items(&mut stream, sent.len(), Duration::from_secs(30)).await;
    assert_eq!(got.len(), sent.len());
    drop(stream);
    for env in sent.iter().step_by(2) {
        nas.mailbox()
            .ack(silta_tests::ack_of(&keys, env))
            .await
            .unwrap();
    }
    Loaded {
        centres,
        auditor,
        cases,
    }
}

fn by_case(case: &[u8]) -> pb::QueryFilter {
    pb::QueryFilter {
        case_ref: case.to_vec(),
        ..Default::default()
    }
}

fn types(events: &[pb::Event]) -> Vec<pb::EventType> {
    events.iter().map(|e| e.r#type()).collect()
}

#[tokio::test]
async fn a_query_by_case_or_message_answers_what_the_scan_answers_page_by_page() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let l = load(&pki, &relay).await;
    let (case, envs) = &l.cases[1][2];
    let filter = by_case(case);

    let expected = scanned(&l.auditor, &filter).await;
    // Three ACCEPTED, three DELIVERED, one or two ACKNOWLEDGED: something to find.
    assert!(expected.len() >= 7, "{:?}", types(&expected));
    for t in [
        pb::EventType::Accepted,
        pb::EventType::Delivered,
        pb::EventType::Acknowledged,
    ] {
        assert!(types(&expected).contains(&t), "{:?}", types(&expected));
    }
    let (whole, _) = all_pages(&l.auditor, &filter, 500).await;
    assert_eq!(whole, expected);
    // Paging across the index: every page size gives the same events in the same order, and
    // each token is the log index after the last event handed out.
    for page_size in [1, 2, 3] {
        let (events, tokens) = all_pages(&l.auditor, &filter, page_size).await;
        assert_eq!(events, expected, "page size {page_size}");
        for (i, token) in tokens.iter().enumerate() {
            let last = &events[(i + 1) * page_size as usize - 1];
            assert_eq!(token, &(last.index + 1).to_string());
        }
    }
    // The types filter and the time filter still apply on top of the index.
    let acked = pb::QueryFilter {
        types: vec![pb::EventType::Acknowledged as i32],
        ..filter.clone()
    };
    let (events, _) = all_pages(&l.auditor, &acked, 500).await;
    assert_eq!(events, scanned(&l.auditor, &acked).await);
    assert!(!events.is_empty());
    // By message: its events only.
    let by_message = pb::QueryFilter {
        message_id: envs[1].message_id.clone(),
        ..Default::default()
    };
    let (events, _) = all_pages(&l.auditor, &by_message, 1).await;
    assert_eq!(events, scanned(&l.auditor, &by_message).await);
    assert!(events.len() >= 2);
    assert!(events.iter().all(|e| e.message_id == envs[1].message_id));
    // A case and a message of another case: nothing, as by the scan.
    let neither = pb::QueryFilter {
        message_id: l.cases[0][0].1[0].message_id.clone(),
        ..filter.clone()
    };
    let page = l
        .auditor
        .audit()
        .query(query(neither, 10, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert!(page.events.is_empty());
    assert!(page.next_page_token.is_empty());
    // A page token beyond the log: nothing, and no more pages.
    let page = l
        .auditor
        .audit()
        .query(query(filter.clone(), 10, "99999999".into()))
        .await
        .unwrap()
        .into_inner();
    assert!(page.events.is_empty());
    assert!(page.next_page_token.is_empty());
    relay.stop().await;
}

#[tokio::test]
async fn a_party_sees_only_its_own_events_through_the_index() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let l = load(&pki, &relay).await;
    let (case, envs) = &l.cases[0][1];
    let filter = by_case(case);
    // The sender sees its case, exactly as its scan would.
    let owner = &l.centres[0];
    let (mine, _) = all_pages(owner, &filter, 2).await;
    assert_eq!(mine, scanned(owner, &filter).await);
    assert!(mine.len() >= 6);
    assert!(mine.iter().all(|e| e.case_ref == *case));
    // Another centre sees nothing of it, by case or by message.
    let other = &l.centres[1];
    let (theirs, _) = all_pages(other, &filter, 2).await;
    assert!(theirs.is_empty(), "{:?}", types(&theirs));
    let by_message = pb::QueryFilter {
        message_id: envs[0].message_id.clone(),
        ..Default::default()
    };
    let (theirs, _) = all_pages(other, &by_message, 2).await;
    assert!(theirs.is_empty(), "{:?}", types(&theirs));
    relay.stop().await;
}

#[tokio::test]
async fn a_party_finds_its_case_in_one_page_however_long_the_log_between() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let _nas = relay.connect_as(&pki, NAS).await;
    let centre = relay.connect_as(&pki, "centre/a").await;
    let case = silta_tests::case_ref();
    let mut env = envelope(MessageKind::Referral, &[NAS], b"late");
    // 21,000 events of others (more than one page's scan of a party's query, 20,000) come
    // first, in writes of 1,000 (each well within the store's write timeout on a busy machine).
    for chunk in 0..21u32 {
        relay
            .store
            .write(move |trees| {
                for i in 0..1_000u32 {
                    trees.transaction(|tx| {
                        tx.append_event(pb::Event {
                            r#type: pb::EventType::AuditQuery.into(),
                            actor: "auditor/dpo".into(),
                            detail: format!("filler {chunk}.{i}"),
                            ..Default::default()
                        })
                    })?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    env.case_ref = case.clone();
    centre.mailbox().send(env.clone()).await.unwrap();
    let page = centre
        .audit()
        .query(query(by_case(&case), 10, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(types(&page.events), [pb::EventType::Accepted]);
    assert_eq!(page.events[0].message_id, env.message_id);
    assert!(page.next_page_token.is_empty());
    relay.stop().await;
}

/// Runs `edit` on the index tree of a stopped relay's database, then restarts the relay and
/// checks every case's query against the scan.
async fn rebuilt_after(edit: impl FnOnce(&sled::Db)) {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let l = load(&pki, &relay).await;
    let mut expected = Vec::new();
    for (case, _) in l.cases.iter().flatten() {
        expected.push((case.clone(), scanned(&l.auditor, &by_case(case)).await));
    }
    drop(l);
    let data = relay.stop_keep().await;
    {
        let db = (0..100)
            .find_map(|_| {
                sled::open(data.path().join("db"))
                    .map_err(|_| std::thread::sleep(Duration::from_millis(100)))
                    .ok()
            })
            .expect("the database opens");
        edit(&db);
        db.flush().unwrap();
    }
    let relay = TestRelay::start_in(&pki, data, |_| {}).await;
    let auditor = relay.connect_as(&pki, "auditor/dpo").await;
    for (case, events) in expected {
        let (got, _) = all_pages(&auditor, &by_case(&case), 2).await;
        assert_eq!(got, events);
        assert!(!got.is_empty());
    }
    let tree = relay
        .store
        .raw_tree(silta_relay::store::REF_INDEX_TREE)
        .expect("the index tree");
    assert!(
        tree.last()
            .unwrap()
            .is_some_and(|(k, _)| k.as_ref() == b"\xffbuilt"),
        "the index is marked complete"
    );
    relay.stop().await;
}

#[tokio::test]
async fn a_database_without_the_index_gets_it_at_start() {
    rebuilt_after(|db| {
        assert!(
            db.drop_tree(silta_relay::store::REF_INDEX_TREE).unwrap(),
            "the relay keeps the index"
        );
    })
    .await;
}

#[tokio::test]
async fn an_index_build_cut_short_is_done_again_at_start() {
    rebuilt_after(|db| {
        let tree = db.open_tree(silta_relay::store::REF_INDEX_TREE).unwrap();
        // The marker goes last, so a crash mid-build leaves a part of the index without it.
        assert!(tree.remove(b"\xffbuilt").unwrap().is_some());
        let keys: Vec<_> = tree.iter().keys().map(Result::unwrap).collect();
        assert!(keys.len() > 10);
        for k in keys.iter().step_by(2) {
            tree.remove(k).unwrap();
        }
    })
    .await;
}

/// A party's page token is sealed: it shows no log position (the page of a case's query may
/// end on another party's event), it is the same for the same page, and it works only for the
/// party and the filter it was issued to; an altered or a plain numeric one is refused.
#[tokio::test]
async fn a_partys_page_token_hides_the_position_and_binds_its_query() {
    let pki = TestPki::new();
    let relay = TestRelay::start(&pki, |_| {}).await;
    let _nas = relay.connect_as(&pki, NAS).await;
    let centre = relay.connect_as(&pki, "centre/a").await;
    let other = relay.connect_as(&pki, "centre/b").await;
    let case = silta_tests::case_ref();
    for i in 0..3u8 {
        let mut env = envelope(MessageKind::Referral, &[NAS], &[i]);
        env.case_ref = case.clone();
        centre.mailbox().send(env).await.unwrap();
    }
    let filter = by_case(&case);
    let first = |conn: &Connection, filter: pb::QueryFilter, token: String| {
        let mut audit = conn.audit();
        async move { audit.query(query(filter, 1, token)).await }
    };
    let page = first(&centre, filter.clone(), String::new())
        .await
        .unwrap()
        .into_inner();
    let index = page.events[0].index;
    let token = page.next_page_token.clone();
    assert!(token.starts_with('s'), "{token}");
    assert!(token.parse::<u64>().is_err());
    // Not the position in the clear, in any of the usual encodings.
    assert!(!token.contains(&format!("{:016x}", index + 1)), "{token}");
    assert_ne!(token.trim_start_matches('s'), (index + 1).to_string());
    // The same page gives the same token; the token gives the next page.
    let again = first(&centre, filter.clone(), String::new())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.next_page_token, token);
    let next = first(&centre, filter.clone(), token.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.events.len(), 1);
    assert!(next.events[0].index > index);
    // The party's own record of its queries (AUDIT_QUERY, visible to it) names the token,
    // not the position it hides.
    let mine = pb::QueryFilter {
        types: vec![pb::EventType::AuditQuery as i32],
        ..Default::default()
    };
    let (queries, _) = all_pages(&centre, &mine, 500).await;
    let paged: Vec<&str> = queries
        .iter()
        .map(|e| e.detail.as_str())
        .filter(|d| d.contains("page token"))
        .collect();
    assert_eq!(paged.len(), 1, "{:?}", types(&queries));
    assert!(
        paged[0].contains(&format!("from page token {token}:")),
        "{}",
        paged[0]
    );
    // Refused: another party, another filter, altered, a plain position.
    let narrower = pb::QueryFilter {
        types: vec![pb::EventType::Accepted as i32],
        ..filter.clone()
    };
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
    let refused = [
        first(&other, filter.clone(), token.clone()).await,
        first(&centre, narrower, token.clone()).await,
        first(&centre, filter.clone(), String::from_utf8(altered).unwrap()).await,
        first(&centre, filter.clone(), (index + 1).to_string()).await,
    ];
    for (i, r) in refused.into_iter().enumerate() {
        match r {
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::InvalidArgument, "{i}: {s:?}");
                assert!(s.message().contains("page_token"), "{i}: {s:?}");
            }
            Ok(r) => panic!("{i}: accepted: {:?}", r.into_inner()),
        }
    }
    relay.stop().await;
}

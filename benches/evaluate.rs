//! One evaluation of a request under a 3-stage policy with 50 reviews: the work
//! the operator does per reconcile and `simulate` per request.

use chrono::{DateTime, Duration, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use gatehouse::{
    api::{AccessPolicy, AccessReview, ApprovalRequest},
    decide::{evaluate, Input},
};
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

fn stamp(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).unwrap())
}

fn fixtures() -> (AccessPolicy, ApprovalRequest, Vec<AccessReview>, DateTime<Utc>) {
    let start: DateTime<Utc> = "2026-11-23T08:00:00Z".parse().unwrap();
    let policy: AccessPolicy = serde_saphyr::from_str(
        r#"
apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: three-stages}
spec:
  requesters: {groups: [dev]}
  roles: [{kind: ClusterRole, name: edit}]
  namespaces: {names: [prod]}
  duration: {default: 1h, max: 8h}
  approval:
    minApprovals: 5
    stages:
      - {name: lead, groups: [leads], minApprovals: 2}
      - {name: security, operator: All, groups: [security, compliance]}
      - {name: owners, groups: [owners], minApprovals: 1}
    forceApprovalGroups: [ic]
    escalation: {after: 1h, groups: [oncall]}
    timeout: 8h
  timeWindow: {timezone: Europe/Berlin, start: "07:00", end: "22:00"}
"#,
    )
    .unwrap();
    let mut request: ApprovalRequest = serde_saphyr::from_str(
        r#"
apiVersion: gatehouse.dev/v1alpha1
kind: ApprovalRequest
metadata: {name: big, namespace: prod, uid: bench-uid}
spec:
  requester: {username: dana, groups: [dev]}
  role: {kind: ClusterRole, name: edit}
  duration: 4h
  reason: benchmark
"#,
    )
    .unwrap();
    request.metadata.creation_timestamp = Some(stamp(start));
    let groups = ["leads", "security", "compliance", "owners", "dev", "oncall"];
    let reviews = (0..50)
        .map(|i| {
            let mut r: AccessReview = serde_saphyr::from_str(&format!(
                "apiVersion: gatehouse.dev/v1alpha1\nkind: AccessReview\nmetadata: {{name: r{i}, namespace: prod}}\nspec:\n  request: {{name: big, uid: bench-uid}}\n  decision: {}\n  reviewer: {{username: user{}, groups: [{}]}}\n",
                if i % 10 == 9 { "Comment" } else { "Approve" },
                i % 40,
                groups[i % groups.len()]
            ))
            .unwrap();
            r.metadata.creation_timestamp = Some(stamp(start + Duration::minutes(2 * i as i64)));
            r
        })
        .collect();
    (policy, request, reviews, start + Duration::hours(3))
}

fn bench(c: &mut Criterion) {
    let (policy, request, reviews, now) = fixtures();
    let policies = [policy];
    let input = Input {
        request: &request,
        policies: &policies,
        reviews: &reviews,
        namespace_labels: None,
        requester_requests: &[],
        extended: None,
        job: None,
        protected_namespaces: &[],
        now,
    };
    assert_eq!(evaluate(&input).status.phase, gatehouse::api::Phase::Active);
    c.bench_function("evaluate 3 stages, 50 reviews", |b| {
        b.iter(|| evaluate(std::hint::black_box(&input)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

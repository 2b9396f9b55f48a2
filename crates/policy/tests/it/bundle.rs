//! The shipped bundle's own tests pass under the runner, with 100% coverage of the critical files.

use policy::{CompileOptions, Limits, Stage, TestOptions, TestStatus, run_tests, validate};

use crate::support::shipped;

const CRITICAL: [&str; 3] = ["production/main.rego", "production/rbac.rego", "production/pii.rego"];

#[test]
fn shipped_tests_pass_with_full_coverage_of_critical_files() {
    let report = run_tests(
        &shipped(Stage::Production),
        &CompileOptions::default(),
        &TestOptions { coverage: true, fail_under: None },
    );
    let rendered = report.render();
    assert!(report.success(), "{rendered}");
    assert!(report.tests.len() >= 30, "{rendered}");
    assert!(report.tests.iter().all(|t| t.status == TestStatus::Pass), "{rendered}");
    let coverage = report.coverage.as_ref().unwrap_or_else(|| panic!("no coverage\n{rendered}"));
    for path in CRITICAL {
        let file = coverage.file(path).unwrap_or_else(|| panic!("{path} missing from coverage\n{rendered}"));
        assert_eq!(file.not_covered, Vec::<u32>::new(), "{path} not fully covered\n{rendered}");
        assert!(file.covered > 0, "{path}");
    }
    assert!(rendered.ends_with(&format!("{} passed, 0 failed\n", report.tests.len())), "{rendered}");
}

#[test]
fn shipped_bundle_is_valid_in_both_stages() {
    for stage in [Stage::Production, Stage::Staging] {
        let problems = validate(&shipped(stage), &CompileOptions::default(), &Limits::default());
        assert_eq!(problems, vec![], "{stage:?}");
    }
}

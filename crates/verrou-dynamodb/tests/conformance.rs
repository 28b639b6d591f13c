//! The shared behaviour suite against the DynamoDB emulator.

mod support;

verrou_conformance::conformance_tests!(
    async { verrou_conformance::require_service("dynamodb", support::make_store().await) },
    verrou_conformance::Capabilities {
        fencing_tokens: true,
        release_announcements: false,
    }
);

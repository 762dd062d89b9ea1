//! The room routes refuse what the user may not do.

use super::*;

#[tokio::test]
async fn room_routes_refuse_what_the_user_may_not_do() {
    let (_rec, deps) = memory_deps().await;
    let a = "ConnAlice00=";
    connect(&deps, a, "alice").await;
    let secret = private_room("secret");
    deps.history
        .create_room(&secret, &user("zed"))
        .await
        .expect("private room");

    // The error frame names the room when the failed frame named a well-formed one, so a
    // client can attribute the error; a malformed room id is never echoed.
    let cases = [
        (
            json!({"action":"joinRoom","room":"secret"}),
            "forbidden",
            Some("secret"),
        ),
        (
            json!({"action":"history","room":"secret"}),
            "forbidden",
            Some("secret"),
        ),
        (
            json!({"action":"history","room":"nowhere"}),
            "not_found",
            Some("nowhere"),
        ),
        (
            json!({"action":"history","room":"general","limit":0}),
            "bad_request",
            Some("general"),
        ),
        (
            json!({"action":"history","room":"general","before":5,"after":1}),
            "bad_request",
            Some("general"),
        ),
        (
            json!({"action":"typing","room":"secret"}),
            "forbidden",
            Some("secret"),
        ),
        (
            json!({"action":"joinRoom","room":"-bad"}),
            "bad_request",
            None,
        ),
        (
            json!({"action":"joinRoom","room":"a".repeat(65)}),
            "bad_request",
            None,
        ),
        (json!({"action":"joinRoom"}), "bad_request", None),
        (json!({"action":"ping"}), "bad_request", None),
    ];
    for (frame, code, named) in cases {
        let v = body_json(&rooms_route(&deps, a, "alice", frame.clone()).await);
        assert_error(&v, code);
        assert_eq!(v["room"].as_str(), named, "{frame}: {v}");
    }
    let v = body_json(
        &rooms_route(
            &deps,
            a,
            "alice",
            json!({"action":"history","room":"nowhere"}),
        )
        .await,
    );
    assert_eq!(
        v["message"], "room not found",
        "the wording the HTTP API uses too"
    );
    assert!(
        !deps
            .live
            .connections
            .is_member(a, &room("secret"))
            .await
            .expect("member")
    );

    // Once added as a member, alice may join the private room.
    deps.history
        .add_member(&room("secret"), "u-alice")
        .await
        .expect("add");
    join(&deps, a, "alice", "secret").await;

    // A connection that is no longer registered cannot join.
    let v = body_json(
        &rooms_route(
            &deps,
            "Unknown0000=",
            "alice",
            json!({"action":"joinRoom","room":"general"}),
        )
        .await,
    );
    assert_error(&v, "unauthorized");
}

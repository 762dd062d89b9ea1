//! The WebSocket API's route table, in one place: every route key API Gateway selects, the
//! function that serves it, and how a frame's `action` selects it.
//!
//! Everything else derives from [`RouteKey`]: frame parsing ([`crate::protocol`]) knows an
//! action by it, hubbub-local dispatches on it (an exhaustive `match`, so a route nobody serves
//! does not compile), and the tests check that `template.yaml` declares exactly these routes,
//! each aimed at its [`Function`]'s integration and snapshotted by the deployment.

use std::fmt;

use crate::protocol::action_of;

/// Declares [`RouteKey`] from one list of `Variant = "route key"` pairs, so the enum,
/// [`RouteKey::ALL`] and [`RouteKey::as_str`] cannot disagree.
macro_rules! route_keys {
    ($($(#[$doc:meta])* $variant:ident = $key:literal,)+) => {
        /// A route of the WebSocket API (`$request.body.action` selects among the action
        /// routes).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RouteKey {
            $($(#[$doc])* $variant,)+
        }

        impl RouteKey {
            /// Every route, `$connect`, `$disconnect` and `$default` first.
            pub const ALL: [Self; [$(stringify!($variant)),+].len()] = [$(Self::$variant),+];

            /// The route key as API Gateway spells it (`RouteKey` in `template.yaml`,
            /// `requestContext.routeKey` in events); for an action route, the `action` that
            /// selects it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $key,)+
                }
            }
        }
    };
}

route_keys! {
    /// The handshake, after the authorizer allowed it.
    Connect = "$connect",
    /// The connection closed, whoever closed it.
    Disconnect = "$disconnect",
    /// Any frame whose `action` selects no other route (and `ping`, see
    /// [`DEFAULT_ROUTE_ACTIONS`]).
    Default = "$default",
    SendMessage = "sendMessage",
    JoinRoom = "joinRoom",
    LeaveRoom = "leaveRoom",
    History = "history",
    Typing = "typing",
    Members = "members",
    EditMessage = "editMessage",
    DeleteMessage = "deleteMessage",
    React = "react",
    MarkRead = "markRead",
}

/// Actions of docs/protocol.md that have no route of their own: API Gateway sends them to
/// `$default`, whose function answers them.
pub const DEFAULT_ROUTE_ACTIONS: [&str; 1] = ["ping"];

impl RouteKey {
    /// The function whose integration serves the route.
    pub const fn function(self) -> Function {
        match self {
            Self::Connect => Function::Connect,
            Self::Disconnect => Function::Disconnect,
            Self::Default => Function::Default,
            // Everything that writes to a room's messages: one function, one moderation hook.
            Self::SendMessage | Self::EditMessage | Self::DeleteMessage | Self::React => {
                Function::SendMessage
            }
            Self::JoinRoom
            | Self::LeaveRoom
            | Self::History
            | Self::Typing
            | Self::Members
            | Self::MarkRead => Function::Rooms,
        }
    }

    /// Whether a frame's `action` selects this route (`$connect`, `$disconnect` and
    /// `$default` are selected otherwise).
    pub const fn is_action(self) -> bool {
        !matches!(self, Self::Connect | Self::Disconnect | Self::Default)
    }

    /// The routes a frame's `action` selects.
    pub fn actions() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(|r| r.is_action())
    }

    /// The route API Gateway selects for a frame whose `action` is `action`: its action
    /// route, else `$default`.
    pub fn for_action(action: &str) -> Self {
        Self::actions()
            .find(|r| r.as_str() == action)
            .unwrap_or(Self::Default)
    }

    /// The route API Gateway selects for a text frame (`$request.body.action`): a JSON object
    /// with a string `action` goes to [`Self::for_action`], anything else to `$default`.
    pub fn for_body(body: &str) -> Self {
        action_of(body).map_or(Self::Default, |a| Self::for_action(&a))
    }

    /// The route whose key is `key`, if any.
    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == key)
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `action` is one docs/protocol.md defines: an action route's, or one `$default` answers.
pub fn is_known_action(action: &str) -> bool {
    RouteKey::for_action(action) != RouteKey::Default || DEFAULT_ROUTE_ACTIONS.contains(&action)
}

/// A function behind the WebSocket API: a crate under `functions/` and its
/// `AWS::Serverless::Function` in `template.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    Connect,
    Disconnect,
    Default,
    SendMessage,
    Rooms,
}

impl Function {
    /// The crate's Lambda binary (`Metadata.BuildProperties.Binary` in the template).
    pub const fn binary(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Disconnect => "disconnect",
            Self::Default => "default-route",
            Self::SendMessage => "send-message",
            Self::Rooms => "rooms",
        }
    }

    /// The function's logical id in `template.yaml`.
    pub const fn logical_id(self) -> &'static str {
        match self {
            Self::Connect => "ConnectFunction",
            Self::Disconnect => "DisconnectFunction",
            Self::Default => "DefaultFunction",
            Self::SendMessage => "SendMessageFunction",
            Self::Rooms => "RoomsFunction",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ClientFrame;

    /// A well-formed frame of each action route; `None` for the routes no frame selects.
    /// Exhaustive, so a new route needs a sample here.
    fn sample_frame(route: RouteKey) -> Option<&'static str> {
        match route {
            RouteKey::Connect | RouteKey::Disconnect | RouteKey::Default => None,
            RouteKey::SendMessage => {
                Some(r#"{"action":"sendMessage","room":"r","body":"hi","clientMsgId":"m1"}"#)
            }
            RouteKey::JoinRoom => Some(r#"{"action":"joinRoom","room":"r"}"#),
            RouteKey::LeaveRoom => Some(r#"{"action":"leaveRoom","room":"r"}"#),
            RouteKey::History => Some(r#"{"action":"history","room":"r","before":9}"#),
            RouteKey::Typing => Some(r#"{"action":"typing","room":"r"}"#),
            RouteKey::Members => Some(r#"{"action":"members","room":"r","limit":10}"#),
            RouteKey::EditMessage => Some(
                r#"{"action":"editMessage","room":"r","seq":3,"body":"hi!","clientMsgId":"e1"}"#,
            ),
            RouteKey::DeleteMessage => {
                Some(r#"{"action":"deleteMessage","room":"r","seq":3,"clientMsgId":"d1"}"#)
            }
            RouteKey::React => Some(r#"{"action":"react","room":"r","seq":3,"emoji":"👍"}"#),
            RouteKey::MarkRead => Some(r#"{"action":"markRead","room":"r","seq":3}"#),
        }
    }

    #[test]
    fn each_action_frame_parses_to_the_route_it_selects() {
        for route in RouteKey::ALL {
            let Some(raw) = sample_frame(route) else {
                assert!(!route.is_action(), "{route} needs a sample frame");
                continue;
            };
            assert_eq!(RouteKey::for_body(raw), route, "{raw}");
            let frame = ClientFrame::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(frame.route_key(), route, "{raw}");
        }
        for action in DEFAULT_ROUTE_ACTIONS {
            let raw = format!(r#"{{"action":"{action}"}}"#);
            assert_eq!(RouteKey::for_body(&raw), RouteKey::Default);
            let frame = ClientFrame::parse(&raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(frame.route_key(), RouteKey::Default, "{raw}");
        }
    }

    #[test]
    fn selection_follows_api_gateway() {
        assert_eq!(RouteKey::for_action("sendMessage"), RouteKey::SendMessage);
        assert_eq!(RouteKey::for_action("typing"), RouteKey::Typing);
        // Route keys are case-sensitive, and the special keys are no actions.
        for other in ["SendMessage", "dance", "ping", "", "$connect", "$default"] {
            assert_eq!(RouteKey::for_action(other), RouteKey::Default, "{other}");
        }
        for body in ["not json", "[]", r#"{"action":5}"#, r#"{"room":"r"}"#] {
            assert_eq!(RouteKey::for_body(body), RouteKey::Default, "{body}");
        }
        assert_eq!(
            RouteKey::for_body(r#"{"action":"joinRoom","extra":[1]}"#),
            RouteKey::JoinRoom
        );
    }

    #[test]
    fn keys_are_unique_and_parse_back() {
        for route in RouteKey::ALL {
            assert_eq!(RouteKey::parse(route.as_str()), Some(route));
            assert_eq!(route.to_string(), route.as_str());
            assert_eq!(route.as_str().starts_with('$'), !route.is_action());
        }
        let keys: std::collections::BTreeSet<_> = RouteKey::ALL.map(RouteKey::as_str).into();
        assert_eq!(keys.len(), RouteKey::ALL.len());
        assert_eq!(RouteKey::parse("ping"), None);
    }

    #[test]
    fn known_actions_are_the_action_routes_and_ping() {
        for route in RouteKey::actions() {
            assert!(is_known_action(route.as_str()), "{route}");
        }
        assert!(is_known_action("ping"));
        for other in ["dance", "$default", "$connect", "JoinRoom", ""] {
            assert!(!is_known_action(other), "{other}");
        }
    }
}

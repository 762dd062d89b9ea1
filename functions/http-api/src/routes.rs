//! The HTTP API's routes, in one place: each route's method and path template, as
//! `template.yaml` declares them in `HttpApiFunction`'s `HttpApi` events.
//!
//! The handler dispatches on [`HttpRoute`] with an exhaustive `match` (a route with no code
//! does not compile), hubbub-local serves exactly these paths, and the tests check that the
//! template declares exactly these routes.

use std::fmt;

/// Declares [`HttpRoute`] from one list of `Variant = METHOD "path"` entries, so the enum,
/// [`HttpRoute::ALL`], [`HttpRoute::method`] and [`HttpRoute::path`] cannot disagree.
macro_rules! http_routes {
    ($($variant:ident = $method:ident $path:literal,)+) => {
        /// A route of the HTTP API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum HttpRoute {
            $(#[doc = concat!("`", stringify!($method), " ", $path, "`.")] $variant,)+
        }

        impl HttpRoute {
            /// Every route.
            pub const ALL: [Self; [$(stringify!($variant)),+].len()] = [$(Self::$variant),+];

            /// The HTTP method (`Method` of the template's event).
            pub const fn method(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($method),)+
                }
            }

            /// The path template (`Path` of the template's event): `{name}` is one path
            /// segment.
            pub const fn path(self) -> &'static str {
                match self {
                    $(Self::$variant => $path,)+
                }
            }
        }
    };
}

http_routes! {
    Register = POST "/auth/register",
    Login = POST "/auth/login",
    Refresh = POST "/auth/refresh",
    Logout = POST "/auth/logout",
    ListRooms = GET "/rooms",
    CreateRoom = POST "/rooms",
    AddMember = POST "/rooms/{room}/members",
    ListMembers = GET "/rooms/{room}/members",
    RemoveMember = DELETE "/rooms/{room}/members/{user}",
    MarkRead = PUT "/rooms/{room}/read",
    Messages = GET "/rooms/{room}/messages",
    OpenDirect = POST "/dm/{username}",
    Health = GET "/health",
}

impl HttpRoute {
    /// API Gateway's route key: `POST /rooms/{room}/members`.
    pub fn route_key(self) -> String {
        format!("{} {}", self.method(), self.path())
    }

    /// The distinct path templates, in [`Self::ALL`]'s order (`/rooms` serves two methods).
    pub fn paths() -> Vec<&'static str> {
        let mut paths: Vec<&'static str> = Vec::new();
        for route in Self::ALL {
            if !paths.contains(&route.path()) {
                paths.push(route.path());
            }
        }
        paths
    }

    /// The route `method path` reaches, with its path parameters; `None` is a 404. `path`
    /// is below the stage (no `/{stage}` prefix).
    pub fn find(method: &str, path: &str) -> Option<Matched> {
        Self::ALL.into_iter().find_map(|route| {
            if route.method() != method {
                return None;
            }
            match_template(route.path(), path).map(|params| Matched { route, params })
        })
    }

    /// Whether `path` (below the stage) is the path of some route, whatever the method.
    pub fn is_route_path(path: &str) -> bool {
        Self::ALL
            .into_iter()
            .any(|route| match_template(route.path(), path).is_some())
    }
}

impl fmt::Display for HttpRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method(), self.path())
    }
}

/// A request's route and the values of its path template's `{name}` segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: HttpRoute,
    /// `("room", "general")` for `/rooms/general/messages`, in template order.
    pub params: Vec<(String, String)>,
}

impl Matched {
    /// The value of the path parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Matches `path` against a path template, collecting its `{name}` parameters (each a
/// non-empty segment). A trailing slash is a different path, as API Gateway treats it.
fn match_template(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, seg) in parts.iter().zip(&segments) {
        match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !seg.is_empty() => params.push((name.to_owned(), (*seg).to_owned())),
            Some(_) => return None,
            None if part == seg => {}
            None => return None,
        }
    }
    Some(params)
}

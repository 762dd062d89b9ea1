// Plain words for every error code of the protocol (plus the client's own `network`), shared by
// the HTTP calls, the room state (error frames) and the view. No DOM access.

export const ERROR_TEXT = {
  bad_request: "The server could not accept that request.",
  unauthorized: "Your session is no longer valid. Please sign in again.",
  forbidden: "You are not allowed to do that here.",
  not_found: "That room does not exist (or no longer exists).",
  conflict: "That name is already taken. Please choose another one.",
  payload_too_large: "That is too large to send. Please shorten it.",
  rate_limited: "Too many attempts. Please wait a moment and try again.",
  gone: "That message was deleted.",
  limit_exceeded: "You have reached a limit of the service (rooms joined or created). Leave or reuse a room first.",
  rejected: "That message was refused by the room's moderation. Please change it.",
  unavailable: "The service is busy right now and nothing was saved. Please try again shortly.",
  internal: "Something went wrong on the server. Please try again.",
  network: "Cannot reach the server. Check your connection and try again.",
};

// What a code means for one kind of request, where the general words would be vague. Branches
// on the code only (docs/protocol.md: programs never read `message`).
export const CONTEXT_TEXT = {
  addMember: {
    forbidden: "Only the room's owners can add members.",
    not_found: "There is no user with that name.",
  },
  removeMember: {
    forbidden: "Only the room's owners can remove other members.",
    not_found: "That person is not a member of this room.",
  },
  leaveRoom: {
    forbidden: "You cannot leave this room (a direct conversation keeps its two people).",
  },
  members: {
    forbidden: "Only the room's members can see who belongs to it.",
  },
  openDirect: {
    not_found: "There is no user with that name.",
    bad_request: "A direct conversation needs another person than yourself.",
  },
};

export function describeError(code, detail, context) {
  const special = context && Object.hasOwn(CONTEXT_TEXT, context) && Object.hasOwn(CONTEXT_TEXT[context], code);
  if (special) return CONTEXT_TEXT[context][code];
  const text = (Object.hasOwn(ERROR_TEXT, code) && ERROR_TEXT[code]) || ERROR_TEXT.internal;
  // The server's own message explains which field was wrong: worth showing for input errors.
  if (detail && (code === "bad_request" || code === "payload_too_large")) return `${text} (${detail})`;
  return text;
}

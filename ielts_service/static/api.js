// The service's JSON API as this page uses it: the session id, the calls, errors in words.

const SESSION_KEY = "ielts-practice-session";
const SESSION_ID = /^[A-Za-z0-9._-]{1,64}$/;
let memorySession = null; // when the browser refuses storage

function randomId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes); // works on plain http too, unlike crypto.randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The session id sent with every request, kept in localStorage; `renew` starts a new one. */
export function sessionId(renew = false) {
  try {
    let id = localStorage.getItem(SESSION_KEY);
    if (renew || !id || !SESSION_ID.test(id)) {
      id = randomId();
      localStorage.setItem(SESSION_KEY, id);
    }
    return id;
  } catch {
    if (renew || !memorySession) memorySession = randomId();
    return memorySession;
  }
}

/** A failed call, with a sentence for the student in `message`, and for a topic the
 * service has no questions on, the catalogue topics it suggests instead. */
export class ApiError extends Error {
  constructor(message, code, suggestions = []) {
    super(message);
    this.code = code;
    this.suggestions = suggestions;
  }
}

/** The topics a `topic_unavailable` answer suggests, closest first. */
function suggestionsOf(body) {
  if (!body || body.code !== "topic_unavailable" || !Array.isArray(body.details)) return [];
  return body.details.map((d) => d && d.suggestion).filter((s) => typeof s === "string" && s);
}

/** "in 42 seconds", from a Retry-After header (seconds or an HTTP date). */
export function waitWords(retryAfter) {
  let seconds = Number(retryAfter);
  if (retryAfter && Number.isNaN(seconds)) seconds = (Date.parse(retryAfter) - Date.now()) / 1000;
  if (!retryAfter || Number.isNaN(seconds)) return "in a moment";
  seconds = Math.max(1, Math.ceil(seconds));
  if (seconds === 1) return "in 1 second";
  if (seconds < 90) return `in ${seconds} seconds`;
  return `in about ${Math.round(seconds / 60)} minutes`;
}

/** What to tell the student about an error envelope (or a response that was not one).
 * The words are the envelope's `message`, from the service's one table of error codes;
 * this page adds only what depends on it: when to try again, and the fields to fix. */
export function errorWords(status, body, retryAfter) {
  const code = body && body.status === "error" ? body.code : null;
  if (code === null) {
    return `The service answered with an unexpected error (HTTP ${status}). Please try again.`;
  }
  if (code === "unauthorized" || code === "forbidden") {
    return "This service needs an API key, which this page does not send.";
  }
  let words = sentence(body.message);
  if (code === "invalid_payload" && body.details && body.details.length) {
    words = `Please check what you typed: ${body.details.map((d) => `${d.field} ${d.problem}`).join("; ")}.`;
  }
  if (status === 429 || status === 503 || status === 504) {
    words += ` Please try again ${status === 504 && !retryAfter ? "now" : waitWords(retryAfter)}.`;
  }
  return words;
}

function sentence(text) {
  const trimmed = String(text || "Something went wrong").trim().replace(/[.;:,]+$/, "");
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1) + ".";
}

async function call(method, path, payload) {
  const init = { method, headers: { accept: "application/json" } };
  if (payload) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError("Could not reach the question service. Check your connection and try again.",
      "network");
  }
  const body = await response.json().catch(() => null);
  if (response.ok && body && body.status === "success") return body.data;
  throw new ApiError(errorWords(response.status, body, response.headers.get("Retry-After")),
    (body && body.code) || `http_${response.status}`, suggestionsOf(body));
}

function withTopic(payload, topic) {
  return topic ? { ...payload, topic } : payload;
}

export const getTopics = () => call("GET", "/v1/topics");
export const getQuestion = (part, topic) =>
  call("POST", "/generate-question", withTopic({ part, session_id: sessionId() }, topic));
export const getMockTest = (topic) =>
  call("POST", "/v1/mock-test", withTopic({ session_id: sessionId() }, topic));

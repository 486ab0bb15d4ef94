// Building the page's pieces. Text from the service is only ever set as text, never as HTML.

/** An element with attributes and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

export const button = (label, onclick, primary = false) =>
  el("button", { type: "button", class: primary ? "primary" : "secondary", onclick }, label);

const sentence = (text) => (/[.?!]$/.test(text) ? text : `${text}.`);

/** Says where an answer came from, when it is the offline bank. */
export function sourceNote(item) {
  if (item.degraded) {
    return el("p", { class: "note" }, "The question generator could not be reached, so this " +
      "comes from the offline question bank.");
  }
  if (item.source === "bank") return el("p", { class: "note" }, "From the offline question bank.");
  return null;
}

/** A topic line: "Topic: <strong>hometown</strong>" plus anything after it. */
export function topicLine(label, topic, ...rest) {
  return el("p", { class: "meta" }, `${label}: `, el("strong", { class: "topic" }, topic), ...rest);
}

/** The cue card as the test shows it. */
export function cueCard(card) {
  return el("div", { class: "cue-card" },
    el("p", { class: "cue-title" }, sentence(card.title)),
    el("p", {}, "You should say:"),
    el("ul", {}, card.bullets.map((b) => el("li", {}, b))),
    el("p", {}, sentence(card.explain)));
}

/** The Part 2 timer panel; `set(label, seconds, total)` updates it. */
export function timerPanel() {
  const label = el("p", { class: "phase", id: "phase-label" });
  const time = el("p", { class: "clock", role: "timer", "aria-labelledby": "phase-label" });
  const bar = el("progress", { max: "1", value: "0", "aria-hidden": "true" });
  const panel = el("div", { class: "timer" }, label, time, bar);
  const set = (text, remaining, total, clockText) => {
    label.textContent = text;
    time.textContent = clockText;
    bar.max = total;
    bar.value = total - remaining;
  };
  return { panel, set };
}

/** Replace the stage's content with a step and move focus to its heading. */
export function showStep(stage, { title, parts, actions }) {
  const heading = el("h2", { tabindex: "-1" }, title);
  stage.replaceChildren(heading, ...parts.filter(Boolean),
    el("div", { class: "actions" }, actions.filter(Boolean)));
  stage.hidden = false;
  heading.focus();
  return heading;
}

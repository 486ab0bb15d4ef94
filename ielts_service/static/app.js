// The practice page: choose a part or a mock test, then walk through it one screen at a time.

import { ApiError, getMockTest, getQuestion, getTopics, sessionId } from "./api.js";
import { clock, countdown, durations } from "./timer.js";
import { button, cueCard, el, showStep, sourceNote, timerPanel, topicLine } from "./views.js";

const $ = (id) => document.getElementById(id);
const setup = $("setup");
const stage = $("stage");
const PART_NAMES = { 1: "Part 1: Interview", 2: "Part 2: Long turn", 3: "Part 3: Discussion" };
let stopTimer = () => {};
let steps = [];
let again = null; // (trigger) => starts the same kind of practice with new questions
let busy = false;

const suggestions = $("suggestions");

/** Show an error in words (or clear it with ""); `offered` topics become buttons that run
 * `retry(button, topic)`: the same practice on a topic the service has questions on. */
function showError(message, offered = [], retry = null) {
  $("error").textContent = message;
  suggestions.replaceChildren();
  suggestions.hidden = !(offered.length && retry);
  if (suggestions.hidden) return;
  const choose = (topic) => (event) => {
    $("topic-text").value = topic;
    retry(event.currentTarget, topic);
  };
  suggestions.append(el("p", { id: "suggestions-title" }, "Topics with questions ready:"),
    el("div", { class: "actions" }, offered.map((topic) => button(topic, choose(topic)))));
  suggestions.querySelector("button").focus();
}
const say = (text) => { $("announce").textContent = text; };
const minutes = (s) => (s % 60 ? `${s} seconds` : `${s / 60} minute${s === 60 ? "" : "s"}`);

/** Run `request` for the button that asked; on failure show the error in words, with
 * the suggested topics (if any) as buttons that `retry` on them. */
async function load(trigger, request, retry) {
  if (busy) return null;
  busy = true;
  $("error").textContent = ""; // suggestions stay until this request ends: one may be `trigger`
  const label = trigger.textContent;
  trigger.textContent = "Loading…";
  trigger.setAttribute("aria-disabled", "true"); // not `disabled`: that would drop focus
  try {
    const result = await request();
    showError("");
    return result;
  } catch (error) {
    if (error instanceof ApiError) showError(error.message, error.suggestions, retry);
    else showError("Something went wrong. Please try again.");
    return null;
  } finally {
    busy = false;
    trigger.textContent = label;
    trigger.removeAttribute("aria-disabled");
  }
}

function backToSetup() {
  stopTimer();
  stage.hidden = true;
  stage.replaceChildren();
  setup.hidden = false;
  $("setup-title").focus();
}

function nextLabel(current, following) {
  if (!following) return "Finish";
  if (following.part !== current.part) return `Continue to Part ${following.part}`;
  return following.item !== current.item ? "Next topic" : "Next question";
}

function run(plan, restart) {
  steps = plan;
  again = restart;
  setup.hidden = true;
  go(0);
}

function go(index) {
  stopTimer();
  showError("");
  if (index >= steps.length) return finished();
  const step = steps[index];
  const screen = step.kind === "card" ? cardScreen : questionScreen;
  return screen(step, () => go(index + 1), nextLabel(step, steps[index + 1]));
}

function questionScreen(step, next, label) {
  showStep(stage, {
    title: PART_NAMES[step.part],
    parts: [topicLine(step.topicLabel, step.topic, step.context ? ` (${step.context})` : ""),
      el("p", { class: "count" }, `Question ${step.number} of ${step.total}`),
      el("p", { class: "question" }, step.text), sourceNote(step.item)],
    actions: [button(label, next, true), button("End practice", backToSetup)],
  });
}

function cardScreen(step, next, label) {
  const { prep, talk } = durations();
  const timer = timerPanel();
  const followUps = el("section", { class: "follow-ups", hidden: true },
    el("h3", { tabindex: "-1" }, "Rounding-off questions"), el("p", {}, "The examiner asks:"),
    el("ul", {}, (step.item.cue_card.follow_ups || []).map((q) => el("li", {}, q))));
  let action = () => {};
  const primary = button("Start talking now", () => action(), true);
  showStep(stage, {
    title: PART_NAMES[2],
    parts: [topicLine("Topic", step.topic), sourceNote(step.item), cueCard(step.item.cue_card),
      el("p", { class: "hint" }, `You have ${minutes(prep)} to prepare and may make notes. ` +
        `Then talk for up to ${minutes(talk)}.`), timer.panel, followUps],
    actions: [primary, button("End practice", backToSetup)],
  });
  const phase = (name, seconds, done) => {
    stopTimer = countdown(seconds, (left) => {
      timer.set(name, left, seconds, clock(left));
      if (left < seconds && (left === 30 || left === 10)) say(`${left} seconds left.`);
    }, done);
  };
  const finish = () => {
    stopTimer();
    timer.set("Time is up", 0, 1, clock(0));
    say("Time is up.");
    followUps.hidden = false;
    followUps.querySelector("h3").focus();
    primary.textContent = label;
    action = next;
  };
  const startTalking = () => {
    stopTimer();
    say(`Start talking now. You have ${minutes(talk)}.`);
    primary.textContent = "Stop talking";
    action = finish;
    phase("Talking time", talk, finish);
  };
  action = startTalking;
  say(`Preparation time: ${minutes(prep)}.`);
  phase("Preparation time", prep, startTalking);
}

function finished() {
  showStep(stage, {
    title: "Practice finished",
    parts: [el("p", {}, "Well done. Practise again for new questions on the same choice, " +
      "or choose something else.")],
    actions: [button("Practise again", (event) => again(event.currentTarget), true),
      button("Choose something else", backToSetup)],
  });
}

function questionSteps(item, part, extra = {}) {
  return item.questions.map((text, i) => ({ kind: "question", part, topic: item.topic, text, item,
    number: i + 1, total: item.questions.length, topicLabel: "Topic", ...extra }));
}

async function startPart(trigger, part, topic) {
  const item = await load(trigger, () => getQuestion(part, topic),
    (button, suggested) => startPart(button, part, suggested));
  if (!item) return;
  run(part === 2 ? [{ kind: "card", part: 2, topic: item.topic, item }] : questionSteps(item, part),
    (button) => startPart(button, part, topic));
}

async function startMock(trigger, topic) {
  const test = await load(trigger, () => getMockTest(topic),
    (button, suggested) => startMock(button, suggested));
  if (!test) return;
  const count = test.part1.topics.length;
  const part1 = test.part1.topics.flatMap((t, i) => questionSteps(
    { ...t, degraded: test.degraded && t.source === "bank" }, 1,
    { context: `topic ${i + 1} of ${count}` }));
  run([...part1, { kind: "card", part: 2, topic: test.part2.topic, item: test.part2 },
    ...questionSteps(test.part3, 3, { topicLabel: "Theme", context: "from your Part 2 card" })],
  (button) => startMock(button, topic));
}

const chosenTopic = () => $("topic-text").value.trim() || $("topic-choice").value || null;

async function loadTopics() {
  try {
    const groups = new Map();
    for (const { topic, category } of (await getTopics()).topics) {
      if (!groups.has(category)) groups.set(category, el("optgroup", { label: category }));
      groups.get(category).append(el("option", { value: topic }, topic));
    }
    $("topic-choice").append(...groups.values());
  } catch (error) {
    showError(`The list of topics could not be loaded; you can still type one. ${error.message}`);
  }
}

$("single-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const part = Number(new FormData(event.target).get("part"));
  startPart(event.submitter || $("start-part"), part, chosenTopic());
});
$("start-mock").addEventListener("click", (event) => startMock(event.currentTarget, chosenTopic()));
$("session-id").textContent = sessionId();
$("new-session").addEventListener("click", () => {
  $("session-id").textContent = sessionId(true);
  say("A new practice session has started.");
});
loadTopics();

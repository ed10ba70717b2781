// The LiveMind page: streams the text box to /v1/session and shows the events.
// Plain script, no libraries.  ?speed=S sets the replay speed (s/char), ?key=K is never
// read: an API key is typed into the key box and sent in the 'start' message.
"use strict";
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const authRequired = document.body.dataset.auth === "required";
let ws = null, ready = false, sendTimer = null, lastSent = null, state = "typing", replaying = false;
let samples = null, sampleIndex = 0, answer = "", liveLatency = null;

const LABELS = { livemind: "LiveMind", cot: "CoT", predgen: "PredGen", continuous: "continuous thinking" };
function label(name) { return LABELS[name] || name; }
function status(text, error) { $("status").textContent = text; $("status").className = error ? "error" : ""; }
function headers() { return authRequired ? { Authorization: "Bearer " + $("apikey").value } : {}; }
function options() { return $("options").value.split("\n").map((s) => s.trim()).filter((s) => s); }
function send(msg) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg)); }

function connect() {
  if (ws) ws.close();
  ready = false;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/session";
  ws = new WebSocket(url);
  ws.onopen = () => {
    const start = { type: "start", baseline: $("baseline").checked };
    if ($("method").value) start.method = $("method").value;
    if (authRequired) start.api_key = $("apikey").value;
    send(start);
  };
  ws.onmessage = (e) => onEvent(JSON.parse(e.data));
  ws.onclose = () => { ready = false; status("disconnected; reload the page or press Connect", true); };
}

// The text box is sent whole ('text' messages), at most every 30 ms while typing.
function scheduleText() {
  if (state !== "typing" || sendTimer) return;
  sendTimer = setTimeout(flushText, 30);
}
function flushText() {
  clearTimeout(sendTimer); sendTimer = null;
  const text = $("question").value;
  if (text !== lastSent) { send({ type: "text", text }); lastSent = text; }
}

function submit() {
  if (state !== "typing" || !$("question").value.trim()) return;
  flushText();
  state = "answering";
  $("answer").textContent = ""; answer = "";
  send({ type: "submit", text: $("question").value, options: options(), baseline: $("baseline").checked });
}

function clearOutput() {
  $("actions").innerHTML = ""; $("answer").textContent = ""; $("baseline-answer").textContent = "";
  for (const id of ["latency-livemind", "busy-livemind", "tokens-livemind", "latency-baseline", "tokens-baseline"]) $(id).textContent = "–";
  liveLatency = null;
}

function reset() {
  if (state === "answering") return;
  send({ type: "reset" });
  state = "typing"; lastSent = null;
  $("question").value = ""; clearOutput(); status("new question");
}

function addAction(ev) {
  const li = document.createElement("li");
  li.className = "action";
  li.innerHTML = '<span class="t"></span><span class="name"></span><span class="content"></span>';
  li.querySelector(".t").textContent = ev.time.toFixed(2) + " s";
  li.querySelector(".name").textContent = ev.name;
  li.querySelector(".name").classList.add(ev.name);
  li.querySelector(".content").textContent = ev.content || (ev.kept ? "" : ev.response.slice(0, 120));
  li.title = ev.segments + " segment(s), " + ev.seconds.toFixed(2) + " s call";
  $("actions").appendChild(li);
  $("actions").scrollTop = $("actions").scrollHeight;
}

// Another method's call while typing (PredGen's speculation, continuous thinking...).
function addStep(ev) {
  const li = document.createElement("li");
  li.className = "action";
  li.innerHTML = '<span class="t"></span><span class="name"></span><span class="content"></span>';
  li.querySelector(".t").textContent = ev.time.toFixed(2) + " s";
  li.querySelector(".name").textContent = ev.name + (ev.note ? " (" + ev.note + ")" : "");
  li.querySelector(".name").classList.add(ev.kept ? "kept" : "dropped");
  li.querySelector(".content").textContent = ev.response.slice(0, 160);
  li.title = ev.segments + " segment(s), " + ev.seconds.toFixed(2) + " s call";
  $("actions").appendChild(li);
  $("actions").scrollTop = $("actions").scrollHeight;
}

// The method is chosen before typing: a change starts a new question with it.
function chooseMethod() {
  if (state === "answering") return;
  reset();
  send({ type: "start", method: $("method").value });
  $("method-name").textContent = label($("method").value);
}

function onEvent(ev) {
  switch (ev.type) {
    case "ready":
      ready = true;
      $("info").textContent = `model ${ev.model}` + (ev.assist_model ? ` (answers: ${ev.assist_model})` : "") +
        ` · ${ev.action_set} · ${ev.prompt_format} · schedule ${ev.schedule}` + (ev.baseline ? "" : " · no baseline");
      if (!params.get("speed") && ev.typing_speed) $("speed").value = ev.typing_speed;
      if (!$("method").options.length) {
        for (const name of ev.methods || [ev.method]) $("method").add(new Option(label(name), name, false, name === ev.method));
        $("method-name").textContent = label($("method").value || "livemind");
      }
      status("connected: type a question");
      break;
    case "segment": status(`sentence complete (${ev.time.toFixed(2)} s): the model is working on it`); break;
    case "action": addAction(ev); break;
    case "step": addStep(ev); break;
    case "restart": {
      const li = document.createElement("li"); li.className = "restart"; li.textContent = "edit inside a finished sentence: starting over";
      $("actions").appendChild(li); break;
    }
    case "submitted": status("submitted: answering…"); break;
    case "final_start": answer = ev.text; $("answer").textContent = answer; break;
    case "token": answer += ev.text; $("answer").textContent = answer; break;
    case "final":
      answer += ev.text; $("answer").textContent = answer;
      liveLatency = ev.latency;
      $("latency-livemind").textContent = ev.latency.toFixed(2) + " s";
      $("busy-livemind").textContent = ev.busy_at_submit.toFixed(2) + " s";
      $("tokens-livemind").textContent = `${ev.usage.completion_tokens} out / ${ev.usage.typing_calls} calls while typing` +
        (ev.note ? ` · answer ${ev.note}` : "");
      status(ev.error ? "answer failed: " + ev.error : ($("baseline").checked ? "answered; running the baseline…" : "answered"), !!ev.error);
      break;
    case "baseline": {
      $("baseline-answer").textContent = ev.answer;
      $("tokens-baseline").textContent = `${ev.usage.completion_tokens} out`;
      const cell = $("latency-baseline");
      cell.textContent = ev.latency.toFixed(2) + " s";
      if (liveLatency !== null && ev.latency > 0) {
        const span = document.createElement("span");
        span.className = liveLatency < ev.latency ? "faster" : "";
        span.textContent = ` (${$("method-name").textContent} ×${(liveLatency / ev.latency).toFixed(2)})`;
        cell.appendChild(span);
      }
      break;
    }
    case "done": state = "done"; status("done: press New question (or Replay) for another"); break;
    case "reset": break;
    case "error": status(`error (${ev.code}): ${ev.message}`, true); break;
  }
}

async function replay() {
  if (replaying || state === "answering") return;
  replaying = true;
  try {
    if (!samples) samples = await (await fetch("/v1/samples", { headers: headers() })).json();
    const item = samples[sampleIndex++ % samples.length];
    if (state !== "typing" || $("question").value) reset();
    clearOutput();
    $("options").value = item.options.join("\n");
    const speed = Math.max(0.001, parseFloat($("speed").value) || 0.25);
    status(`replaying a ${item.category} question at ${speed} s/char`);
    const t0 = performance.now();
    for (let i = 1; i <= item.question.length; i++) {
      const wait = t0 + i * speed * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      $("question").value = item.question.slice(0, i);
      scheduleText();
    }
    submit();
  } catch (err) {
    status("replay failed: " + err, true);
  } finally {
    replaying = false;
  }
}

$("question").addEventListener("input", () => {
  if (state !== "typing") { status("the question was submitted: press New question", true); return; }
  scheduleText();
});
$("question").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); } });
$("submit").onclick = submit;
$("reset").onclick = reset;
$("replay").onclick = replay;
$("connect").onclick = connect;
$("method").onchange = chooseMethod;
if (params.get("speed")) $("speed").value = params.get("speed");
if (authRequired) { $("keybox").hidden = false; status("this server needs an API key"); } else connect();

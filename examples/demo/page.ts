// Copyright 2026 the wirestream authors. MIT license.
// The demo's page and its script: four panels (chat, upload, media, live figures) on one page.
// Element ids are what tests/browser/demo_test.ts drives.

/** The chat messages a page keeps shown; older ones are removed as new ones come. */
export const MAX_KEPT = 200;

/** The page. */
export const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wirestream demo</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 12px 20px; }
  header small { opacity: .7; margin-left: 8px; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 16px; padding: 16px; }
  section { background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 3px #0002; }
  h2 { font-size: 16px; margin: 0 0 10px; }
  #messages { height: 180px; overflow-y: auto; border: 1px solid #dde; border-radius: 4px; padding: 6px; margin: 0 0 8px; list-style: none; }
  #messages li.me { color: #2a5db0; }
  #messages .from { font-weight: 600; margin-right: 6px; }
  #users { color: #556; font-size: 13px; }
  input[type=text] { width: 60%; }
  progress { width: 100%; }
  .error { color: #b00020; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 12px; margin: 0; }
  dt { color: #556; }
  audio { width: 100%; }
</style>
<header><strong>wirestream</strong><small>engine: <span id="engine">…</span></small></header>
<main>
  <section id="chat">
    <h2>Chat</h2>
    <div>You are <strong id="me">…</strong>. Here: <span id="users"></span></div>
    <div id="chat-error" class="error"></div>
    <ul id="messages"></ul>
    <form id="chat-form"><input id="text" type="text" autocomplete="off" placeholder="Say something" maxlength="2000">
      <button id="send">Send</button></form>
  </section>
  <section id="upload">
    <h2>Upload</h2>
    <form id="upload-form"><input id="file" type="file" name="file" multiple>
      <button id="upload-button">Upload</button></form>
    <progress id="progress" max="1" value="0"></progress>
    <div id="upload-status"></div>
  </section>
  <section id="media">
    <h2>Media (served with ranges)</h2>
    <audio id="player" controls preload="metadata" src="/media/tone.wav"></audio>
    <div>Position: <span id="position">0</span> s; a seek asks for a range (206).</div>
  </section>
  <section id="live">
    <h2>Live</h2>
    <dl>
      <dt>WebSocket sessions</dt><dd id="live-sessions">0</dd>
      <dt>Chat messages/s</dt><dd id="live-rate">0</dd>
      <dt>Chat messages</dt><dd id="live-messages">0</dd>
      <dt>Uploads</dt><dd id="live-uploads">0</dd>
      <dt>Media 200 / 206</dt><dd id="live-media">0 / 0</dd>
    </dl>
  </section>
</main>
<script type="module" src="/app.js"></script>
</html>
`;

/** The page's script: plain browser JavaScript, no build step. */
export const SCRIPT = `const $ = (selector) => document.querySelector(selector);
const wsUrl = (path) => new URL(path, location.href.replace(/^http/, "ws"));

// Chat: a session to /ws/chat; the server says welcome, presence and messages, as JSON.
const MAX_KEPT = ${MAX_KEPT};
let me = null;
function connectChat() {
  const wanted = new URLSearchParams(location.search).get("name") ?? "";
  const socket = new WebSocket(wsUrl("/ws/chat?name=" + encodeURIComponent(wanted)));
  socket.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "welcome") {
      me = data.name;
      $("#me").textContent = me;
      document.body.dataset.chat = "ready";
    } else if (data.type === "presence") {
      $("#users").textContent = data.users.join(", ");
    } else if (data.type === "message") {
      const item = document.createElement("li");
      if (data.from === me) item.className = "me";
      const from = document.createElement("span");
      from.className = "from";
      from.textContent = data.from;
      item.append(from, document.createTextNode(data.text));
      const list = $("#messages");
      list.append(item);
      // Only the last MAX_KEPT stay: a tab left open in a busy room must not grow without end.
      while (list.children.length > MAX_KEPT) list.firstElementChild.remove();
      list.scrollTop = list.scrollHeight;
    } else if (data.type === "error") {
      $("#chat-error").textContent = data.message;
    }
  };
  socket.onclose = (event) => {
    document.body.dataset.chat = "closed";
    if (event.code === 1013 || event.code === 1008) {
      // Refused (the room is full, too many tabs from here) or closed for its conduct: say
      // why, and try again only after a while.
      $("#chat-error").textContent =
        "closed: " + (event.reason || event.code) + "; retrying in 30 s";
      setTimeout(connectChat, 30_000);
      return;
    }
    setTimeout(connectChat, 1000); // the server restarted, or the network dropped
  };
  $("#chat-form").onsubmit = (event) => {
    event.preventDefault();
    const text = $("#text").value.trim();
    if (text === "" || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ text }));
    $("#text").value = "";
  };
}
connectChat();

// Upload: multipart with progress (XMLHttpRequest reports upload progress; fetch does not).
$("#upload-form").onsubmit = (event) => {
  event.preventDefault();
  const files = $("#file").files;
  if (files.length === 0) return;
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  const request = new XMLHttpRequest();
  request.open("POST", "/upload");
  request.responseType = "json";
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) $("#progress").value = e.loaded / e.total;
  };
  const status = $("#upload-status");
  status.className = "";
  status.textContent = "uploading…";
  request.onload = () => {
    const body = request.response ?? {};
    if (request.status === 200) {
      $("#progress").value = 1;
      status.textContent = body.saved.map((f) => "saved " + f.name + " (" + f.size + " bytes) as " + f.stored).join("; ");
      status.dataset.state = "done";
    } else {
      $("#progress").value = 0;
      status.className = "error";
      status.textContent = body.error ?? (request.status === 413
        ? "Upload refused: the upload is too large"
        : "Upload failed: HTTP " + request.status);
      status.dataset.state = "refused";
    }
  };
  request.onerror = () => {
    status.className = "error";
    status.textContent = "Upload failed: the connection ended (is the file over the limit?)";
    status.dataset.state = "failed";
  };
  request.send(form);
};

// Media: the position, as the player reports it.
$("#player").ontimeupdate = () => ($("#position").textContent = $("#player").currentTime.toFixed(1));

// Live figures, pushed each second.
function connectLive() {
  const socket = new WebSocket(wsUrl("/ws/live"));
  socket.onmessage = (event) => {
    const s = JSON.parse(event.data);
    $("#engine").textContent = s.engine;
    $("#live-sessions").textContent = s.sessions;
    $("#live-rate").textContent = s.messagesPerSecond;
    $("#live-messages").textContent = s.messages;
    $("#live-uploads").textContent = s.uploads + " (" + s.uploadedBytes + " bytes)";
    $("#live-media").textContent = s.media.whole + " / " + s.media.ranges;
  };
  socket.onclose = () => setTimeout(connectLive, 1000);
}
connectLive();
`;

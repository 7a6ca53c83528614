// The dashboard's only script (served as a file: the Content-Security-Policy allows no inline code).
// Live pages reload their <main> when the server says the cluster changed; the log viewer streams
// lines from the server over Server-Sent Events. Text is inserted as text, never as HTML.

function liveUpdates() {
  const body = document.body;
  if (body.dataset.live !== "1" || !window.EventSource) return;
  const status = document.getElementById("live");
  const es = new EventSource("/api/updates");
  let generation = body.dataset.generation;
  es.addEventListener("open", () => {
    if (status) status.textContent = "live";
  });
  es.addEventListener("error", () => {
    if (status) status.textContent = "reconnecting";
  });
  es.addEventListener("changed", async (ev) => {
    if (ev.data === generation) return;
    generation = ev.data;
    const r = await fetch(location.href, { headers: { accept: "text/html" }, credentials: "same-origin" });
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    const next = doc.getElementById("main");
    const main = document.getElementById("main");
    if (next && main) main.replaceChildren(...next.childNodes);
  });
}

function logViewer() {
  const form = document.getElementById("log-form");
  const out = document.getElementById("log");
  if (!form || !out) return;
  let es;
  const start = () => {
    if (es) es.close();
    out.textContent = "";
    const data = new FormData(form);
    const q = new URLSearchParams({
      container: String(data.get("container") || ""),
      previous: data.get("previous") ? "1" : "0",
      follow: data.get("follow") ? "1" : "0",
    });
    const url = `/api/pods/${encodeURIComponent(form.dataset.namespace)}/${encodeURIComponent(form.dataset.name)}/logs?${q}`;
    es = new EventSource(url);
    const append = (text, cls) => {
      const line = document.createElement("span");
      if (cls) line.className = cls;
      line.textContent = `${text}\n`;
      out.append(line);
      if (out.childNodes.length > 5000) out.firstChild.remove();
      out.scrollTop = out.scrollHeight;
    };
    es.addEventListener("message", (ev) => append(JSON.parse(ev.data)));
    es.addEventListener("failure", (ev) => append(JSON.parse(ev.data), "log-failure"));
    es.addEventListener("end", () => es.close());
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    start();
  });
  start();
}

document.addEventListener("DOMContentLoaded", () => {
  liveUpdates();
  logViewer();
});

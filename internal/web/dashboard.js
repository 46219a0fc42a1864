// The dashboard's live event log and matrix refresh (served as a file: the page has no inline script).
const runDiv = document.getElementById("run");
// The fleet across all runs, refreshed with the run (replaced only when it changed).
const refreshFleet = () => fetch("/fleet").then(r => r.text()).then(h => {
  const f = document.getElementById("fleet"), next = document.createElement("template");
  next.innerHTML = h;
  if (f && next.innerHTML !== f.innerHTML) f.innerHTML = next.innerHTML;
});
const run = runDiv ? runDiv.dataset.run : "";
if (run) {
  const es = new EventSource("/events?run=" + encodeURIComponent(run));
  // Refresh the matrix, but never under a person writing a reason in one of its forms.
  const editing = () => Array.from(document.querySelectorAll("#matrix input[name=reason]")).some(i => i.value !== "" || i === document.activeElement);
  const refresh = () => {
    clearTimeout(window.refresh);
    window.refresh = setTimeout(() => {
      if (editing()) { refresh(); return; }
      fetch("/matrix?run=" + encodeURIComponent(run)).then(r => r.text()).then(h => {
        if (editing()) { refresh(); return; }
        // Replaced only when it changed: a form a person is about to use stays where it is.
        const m = document.getElementById("matrix"), next = document.createElement("template");
        next.innerHTML = h;
        if (next.innerHTML !== m.innerHTML) m.innerHTML = next.innerHTML;
      });
      refreshFleet();
    }, 100);
  };
  es.addEventListener("journal", (e) => {
    const li = document.createElement("li"); li.textContent = e.data;
    document.getElementById("log").appendChild(li);
    refresh();
  });
  es.addEventListener("change", refresh);
}

// The demo page's only script: keep the feed and the conference table fresh, and send the control
// room's forms without leaving the page. Without it the forms still work (the server redirects back).
"use strict";

const statusLine = document.getElementById("status");
const shown = {};

async function refresh(id, url) {
  const target = document.getElementById(id);
  if (!target) return;
  try {
    const response = await fetch(url, {cache: "no-store"});
    if (!response.ok) return;
    const html = await response.text();
    if (html !== shown[id]) { target.innerHTML = html; shown[id] = html; }
  } catch (error) { /* the demo is shutting down: keep the last view */ }
}

function refreshAll() {
  return Promise.all([refresh("feed", "/feed"), refresh("conferences", "/conferences")]);
}

async function poll() {
  await refreshAll();
  setTimeout(poll, 1000);
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-control]");
  if (!form) return;
  event.preventDefault();
  const button = event.submitter;
  const body = new URLSearchParams(new FormData(form, button));
  if (button) button.disabled = true;
  statusLine.className = "";
  statusLine.textContent = "…";
  try {
    const response = await fetch(form.action, {method: "POST", body, headers: {"Accept": "application/json"}});
    const answer = await response.json();
    statusLine.className = answer.ok ? "ok" : "error";
    statusLine.textContent = answer.note;
    if (answer.ok && form.id === "slash") form.elements.text.value = "";
  } catch (error) {
    statusLine.className = "error";
    statusLine.textContent = "The demo is not answering.";
  } finally {
    if (button) button.disabled = false;
    await refreshAll();
  }
});

setTimeout(poll, 1000);

// The playground: POST the question, read the server-sent events of the reply as they come.
(() => {
  const pickers = document.getElementById("ask");
  const say = document.getElementById("say");
  const input = document.getElementById("question");
  const conversation = document.getElementById("conversation");
  const history = [];

  function line(who, text, cls) {
    const p = document.createElement("p");
    p.className = "line " + cls;
    const b = document.createElement("b");
    b.textContent = who + ": ";
    const span = document.createElement("span");
    span.textContent = text;
    p.append(b, span);
    conversation.append(p);
    return span;
  }

  say.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    const asker = pickers.querySelector("[name=asker]").value;
    const place = pickers.querySelector("[name=place]").value;
    line("asked", text, "asker");
    const shown = line("persona", "…", "persona");
    shown.parentElement.setAttribute("aria-busy", "true");
    const button = document.getElementById("send");
    button.disabled = true;
    try {
      const response = await fetch("/playground/ask", {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": pickers.dataset.csrf},
        body: JSON.stringify({text, asker, place, history}),
      });
      if (!response.ok) {
        shown.textContent = await response.text();
        shown.parentElement.classList.add("error");
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!event.startsWith("data: ")) continue;
          const data = JSON.parse(event.slice(6));
          if (data.error) {
            shown.textContent = data.error;
            shown.parentElement.classList.add("error");
          } else {
            shown.textContent = data.text || "…";
          }
          if (data.done) {
            history.push({mine: false, text}, {mine: true, text: data.text});
            const link = document.createElement("a");
            link.href = "/replies/" + data.reply_id;
            link.className = "reply-link";
            link.textContent = " reply " + data.reply_id + " · " + data.verdict;
            shown.parentElement.append(link);
          }
        }
      }
    } finally {
      shown.parentElement.removeAttribute("aria-busy");
      button.disabled = false;
      input.focus();
    }
  });
})();

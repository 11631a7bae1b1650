//! Slack incoming webhooks: a coloured attachment of Block Kit blocks, with the
//! title as the plain-text fallback (what the phone notification shows).

use serde_json::{json, Value};

use super::Envelope;

/// Slack shows at most this many fields in one section.
const FIELDS_PER_SECTION: usize = 10;

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters: `<!channel>` in a
/// requester's reason would otherwise ping everyone, `<http://x|text>` would
/// disguise a link.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The message as a Slack payload.
pub fn render(e: &Envelope<'_>) -> Value {
    let m = e.message;
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{}*\n{}", escape(&m.title), escape(&m.text))}
    })];
    for chunk in m.fields.chunks(FIELDS_PER_SECTION) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", escape(v))}))
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if !m.commands.is_empty() {
        // Inside a code block nothing is formatted; the escaping still applies.
        let code = m
            .commands
            .iter()
            .map(|c| escape(c))
            .collect::<Vec<_>>()
            .join("\n");
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("```{code}```")}
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": escape(&e.footer())}]
    }));
    json!({
        "text": escape(&m.title),
        "attachments": [{"color": m.tone.colour(), "blocks": blocks}]
    })
}

//! Microsoft Teams workflow webhooks ("When a Teams webhook request is
//! received"): a message with one Adaptive Card attachment. Every text is
//! Markdown to Teams, so every text is escaped ([`escape`]), as Slack's are:
//! a requester's reason cannot make a link, a list or bold text.

use serde_json::{json, Value};

use super::Envelope;
use crate::{escape::markdown::escape, notify::message::Tone};

fn colour(t: Tone) -> &'static str {
    match t {
        Tone::Action => "Accent",
        Tone::Good => "Good",
        Tone::Info => "Default",
        Tone::Warning => "Attention",
    }
}

/// The message as a Teams payload.
pub fn render(e: &Envelope<'_>) -> Value {
    let m = e.message;
    let mut body = vec![
        json!({"type": "TextBlock", "text": escape(&m.title), "weight": "Bolder", "size": "Medium",
               "color": colour(m.tone), "wrap": true}),
        json!({"type": "TextBlock", "text": escape(&m.text), "wrap": true}),
        json!({"type": "FactSet", "facts": m.fields.iter()
            .map(|(k, v)| json!({"title": escape(k), "value": escape(v)})).collect::<Vec<_>>()}),
    ];
    if !m.commands.is_empty() {
        body.push(json!({"type": "TextBlock", "text": "Run as yourself:", "weight": "Bolder", "wrap": true}));
        for c in &m.commands {
            body.push(json!({"type": "TextBlock", "text": escape(c), "fontType": "Monospace", "wrap": true}));
        }
    }
    body.push(
        json!({"type": "TextBlock", "isSubtle": true, "size": "Small", "wrap": true, "text": escape(&e.footer())}),
    );
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body
            }
        }]
    })
}

//! The JSON feed, shaped as Huginn's DataOutputAgent answers `.json`:
//! `{"title", "description", "pubDate", "items": [...]}` where each item is simplified:
//! a value with `_attributes`/`_contents` becomes its contents (`{"contents": x}` for a
//! non-object) merged with its attributes, so the guid reads
//! `{"contents": 123, "isPermaLink": "false"}`.

use serde::Serialize;
use serde_json::Value;

use super::FeedDoc;
use super::item::Node;

/// Huginn's `simplify_item_for_json`: objects are walked; arrays are mapped only at the
/// top (the item list), as Huginn's are.
pub fn simplify(node: &Node) -> Node {
    match node {
        Node::Object(fields) => Node::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Node::Object(inner) if has_markers(inner) => {
                            let contents = match Node::get(inner, "_contents") {
                                Some(c @ Node::Object(_)) => simplify(c),
                                Some(Node::Scalar(Value::Null | Value::Bool(false))) | None => {
                                    Node::Object(Vec::new())
                                }
                                Some(c) => Node::Object(vec![("contents".into(), c.clone())]),
                            };
                            let Node::Object(mut merged) = contents else {
                                return (k.clone(), Node::Object(Vec::new()));
                            };
                            if let Some(Node::Object(attrs)) = Node::get(inner, "_attributes") {
                                for (ak, av) in attrs {
                                    Node::set(&mut merged, ak, av.clone());
                                }
                            }
                            Node::Object(merged)
                        }
                        Node::Object(_) => simplify(v),
                        other => other.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Node::Array(items) => Node::Array(items.iter().map(simplify).collect()),
        other => other.clone(),
    }
}

fn has_markers(fields: &[(String, Node)]) -> bool {
    fields
        .iter()
        .any(|(k, _)| k == "_attributes" || k == "_contents")
}

/// A data_output agent's `.json` feed, in Huginn's shape (not jsonfeed.org's).
#[derive(Serialize, utoipa::ToSchema)]
pub struct JsonFeed<'a> {
    pub title: &'a str,
    pub description: &'a str,
    /// When the feed was built: RFC 3339 in UTC with milliseconds, as Huginn prints it.
    #[serde(rename = "pubDate")]
    pub pub_date: String,
    /// The items as the agent's `template.item` shapes them.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Node>,
}

pub fn render(doc: &FeedDoc) -> Result<String, serde_json::Error> {
    let feed = JsonFeed {
        title: &doc.title,
        description: &doc.description,
        pub_date: super::time::json_time(&doc.built_at),
        items: doc
            .items
            .iter()
            .map(|fields| simplify(&Node::Object(fields.clone())))
            .collect(),
    };
    serde_json::to_string(&feed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simplifies_like_huginn() {
        let item = Node::from_value(&json!({
            "guid": {"_attributes": {"isPermaLink": "false"}, "_contents": 7},
            "enclosure": {"_attributes": {"url": "http://x/a.mp3", "type": "audio/mpeg"}},
            "media:content": {"_attributes": {"url": "u"}, "_contents": {"media:title": "t"}},
            "nested": {"a": {"_contents": "x", "_attributes": {"_contents": "attr wins"}}},
            "list": [{"_contents": "kept as is"}],
            "plain": "p"
        }));
        let out = serde_json::to_value(simplify(&item)).unwrap();
        assert_eq!(
            out,
            json!({
                "guid": {"contents": 7, "isPermaLink": "false"},
                "enclosure": {"url": "http://x/a.mp3", "type": "audio/mpeg"},
                "media:content": {"media:title": "t", "url": "u"},
                "nested": {"a": {"contents": "x", "_contents": "attr wins"}},
                "list": [{"_contents": "kept as is"}],
                "plain": "p"
            })
        );
    }
}

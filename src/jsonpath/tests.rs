use super::*;
use proptest::prelude::*;
use serde_json::json;

fn q(path: &str, doc: &Value) -> Result<Vec<Value>, QueryError> {
    let p = BoundedPath::parse(path, Limits::default()).unwrap();
    p.query(doc).map(|v| v.into_iter().cloned().collect())
}

/// `[[[ ... [1] ... ]]]`, `depth` arrays deep: the 208-byte event of the report.
fn nested(depth: usize) -> Value {
    let mut v = json!([1]);
    for _ in 1..depth {
        v = Value::Array(vec![v]);
    }
    v
}

#[test]
fn selects_like_rfc_9535() {
    let doc =
        json!({"store": {"book": [{"t": "a", "p": 8}, {"t": "b", "p": 12}], "bike": {"p": 19}}});
    assert_eq!(q("$.store.book[1].t", &doc).unwrap(), vec![json!("b")]);
    // Object members in key order: serde_json keeps them sorted.
    assert_eq!(
        q("$..p", &doc).unwrap(),
        vec![json!(19), json!(8), json!(12)]
    );
    assert_eq!(
        q("$.store.book[?@.p < 10].t", &doc).unwrap(),
        vec![json!("a")]
    );
    assert_eq!(
        q("$.store.book[-1:]", &doc).unwrap(),
        vec![json!({"t": "b", "p": 12})]
    );
    assert_eq!(
        q("$.store.book[?match(@.t, 'a|b')].p", &doc).unwrap(),
        vec![json!(8), json!(12)]
    );
    assert_eq!(q("$.nothing", &doc).unwrap(), Vec::<Value>::new());
    assert_eq!(q("$", &doc).unwrap(), vec![doc.clone()]);
}

#[test]
fn a_value_reached_twice_is_returned_once() {
    let doc = json!([{"a": 1}, {"a": 2}]);
    assert_eq!(q("$[0,0,1]", &doc).unwrap().len(), 2);
    assert_eq!(q("$..*..a", &doc).unwrap(), vec![json!(1), json!(2)]);
}

#[test]
fn huginn_paths_need_no_dollar() {
    let doc = json!({"data": {"items": [{"x": 1}]}});
    for p in ["data.items[0].x", ".data.items[0].x", "$.data.items[0].x"] {
        let path = BoundedPath::parse_huginn(p).unwrap();
        assert_eq!(path.first(&doc).unwrap(), Some(&json!(1)), "{p}");
    }
}

#[test]
fn the_reported_path_is_refused_before_it_runs() {
    let err = BoundedPath::parse_huginn("$..*..*..*..*..*..*").unwrap_err();
    assert_eq!(
        err.to_string(),
        "has 6 descendant (..) segments; at most 4 are allowed (JSONPath descendant limit)"
    );
}

#[test]
fn the_deepest_allowed_path_on_the_reported_event_stays_small() {
    let doc = nested(100);
    assert!(serde_json::to_string(&doc).unwrap().len() <= 210);
    let found = q("$..*..*..*..*", &doc).unwrap();
    // Every value at depth four or more, once each.
    assert_eq!(found.len(), 97);
}

#[test]
fn each_runtime_bound_names_itself() {
    let wide = Value::Array((0..20_000).map(Value::from).collect());
    assert_eq!(
        q("$..*", &wide).unwrap_err().to_string(),
        "would select more than 10000 values (JSONPath result limit)"
    );
    let tight = Limits {
        max_held: 100,
        ..Limits::default()
    };
    let p = BoundedPath::parse("$[*][0]", tight).unwrap();
    assert_eq!(p.query(&wide).unwrap_err(), QueryError::Held(100));
    let small_work = Limits {
        max_work: 1000,
        ..Limits::default()
    };
    let p = BoundedPath::parse("$[?match(@, '1.*')]", small_work).unwrap();
    assert_eq!(
        p.query(&wide).unwrap_err().to_string(),
        "would take more than 1000 steps (JSONPath work limit)"
    );
}

#[test]
fn absurd_shapes_are_refused_with_the_reason() {
    let long = format!("${}", ".a".repeat(600));
    assert!(matches!(
        BoundedPath::parse_huginn(&long),
        Err(PathError::TooLong(1201, 1000))
    ));
    assert!(matches!(
        BoundedPath::parse_huginn("$[?@.a == $.b]"),
        Err(PathError::RootInFilter(_))
    ));
    assert!(matches!(
        BoundedPath::parse_huginn("$[?count(@..*) > 1]"),
        Err(PathError::DescendantInFilter(_))
    ));
    assert!(matches!(
        BoundedPath::parse_huginn("$.a["),
        Err(PathError::Syntax(_))
    ));
}

fn count(v: &Value) -> f64 {
    1.0 + children(v).into_iter().map(count).sum::<f64>()
}

/// An upper bound of the nodes the unbounded crate lists for `p`: it keeps duplicates,
/// so it is only asked when that stays small.
fn crate_cost(p: &BoundedPath, doc: &Value) -> f64 {
    let n = count(doc);
    p.segments.iter().fold(1.0, |acc, s| {
        let per = s.selectors.len() as f64 * n;
        acc * per * if s.descendant { n } else { 1.0 }
    })
}

/// Paths built from every segment form, with junk between them now and then.
fn path_strategy() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        ".a",
        ".b",
        "..a",
        ".*",
        "..*",
        "[0]",
        "[-1]",
        "[*]",
        "[0,0]",
        "[1:3]",
        "[::-1]",
        "['a','b']",
        "[?@.a]",
        "[?@ > 1]",
        "[?count(@.*) > 0]",
        "[?match(@, 'x.*')]",
        "..[?@.b == 'x']",
        "[?length(@) > 1]",
        "..[0]",
        "[",
        "]",
        "?",
        "'",
        "$",
        ",",
        "(",
    ]);
    prop::collection::vec(piece, 0..12).prop_map(|p| format!("${}", p.concat()))
}

/// Nested documents, from flat to a hundred deep.
fn doc_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!(1)),
        Just(json!(2)),
        Just(json!("x")),
        Just(json!("xy")),
        Just(Value::Null),
    ];
    let tree = leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(vec!["a", "b", "c"]), inner, 0..3)
                .prop_map(|m| json!(m)),
        ]
    });
    prop_oneof![tree, (1usize..100).prop_map(nested)]
}

proptest! {
    // CI runs a few cases; `PROPTEST_CASES=200000 cargo test --lib jsonpath` runs long.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn never_panics_and_stays_in_bounds(path in path_strategy(), doc in doc_strategy()) {
        let limits = Limits { max_results: 50, max_held: 200, max_work: 20_000, ..Limits::default() };
        if let Ok(p) = BoundedPath::parse(&path, limits) {
            match p.query(&doc) {
                Ok(found) => {
                    prop_assert!(found.len() <= limits.max_results);
                    if crate_cost(&p, &doc) > 1e6 {
                        return Ok(());
                    }
                    // The same values as the unbounded crate, each once, first one first.
                    let full = JsonPath::parse(&path).unwrap().query(&doc).all();
                    let mut seen = HashSet::new();
                    let want: Vec<&Value> = full
                        .into_iter()
                        .filter(|v| seen.insert(*v as *const Value))
                        .collect();
                    prop_assert_eq!(found.len(), want.len());
                    prop_assert!(found.iter().zip(&want).all(|(a, b)| std::ptr::eq(*a, *b)));
                }
                Err(e) => prop_assert!(e.to_string().contains("(JSONPath")),
            }
        }
    }
}

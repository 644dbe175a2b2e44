//! Pinning what the goal states, and knowing what the goal leaves open:
//! shared by the offline drafter (which pins and marks `confirm`) and the
//! grounding checks (which hold every drafter to the same `confirm` rule).
//!
//! A parameter (path, query or body field, at any depth) is *for* a kind of
//! value when its name, its parents' names, its description or its format
//! say so: `to`, `email` or `format: email` take an email; `iban` or
//! `creditorAccount.identification` an IBAN; `channel` a channel; `amount`
//! an amount. A value the goal states of that kind is pinned there (`const`
//! or `enum`, query `values`, a literal path segment); an id or quoted
//! value is pinned where the parameter is named by the noun before it
//! (`subject 'Hi'`, `invoice INV-7`).
//!
//! A write whose parameter names a recipient, destination, account, URL,
//! email, amount or file, left open by the goal, is marked `confirm`: the
//! owner confirms each such call.

use serde_json::{Value, json};

use crate::goal::{Goal, Kind, Stated, split_words};

/// What a parameter takes, as far as pinning is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Email,
    Phone,
    Url,
    Account,
    Channel,
    User,
    Amount,
    Currency,
    /// A recipient of unknown kind (`to`, `recipient`): an email, a phone,
    /// a user or a channel.
    Recipient,
    File,
    /// Nothing in particular.
    Other,
}

/// Name words for each class (singular, lower case), checked on the
/// parameter's own words first, then its parents'.
const CLASS_WORDS: &[(Class, &[&str])] = &[
    (Class::Email, &["email", "mail", "cc", "bcc", "from", "sender", "replyto"]),
    (Class::Phone, &["phone", "msisdn", "sms"]),
    (Class::Url, &["url", "uri", "link", "href", "webhook", "callback", "website", "homepage"]),
    (Class::Account, &["iban", "account", "creditor", "debtor", "payee", "beneficiary", "bic", "routing"]),
    (Class::Channel, &["channel", "conversation", "chat", "room"]),
    (Class::Amount, &["amount", "price", "total", "sum"]),
    (Class::Currency, &["currency"]),
    (Class::Recipient, &["to", "recipient", "destination", "dest", "attendee", "invitee", "participant", "guest"]),
    // A reviewer or collaborator is sent the work, like an assignee.
    (Class::User, &["user", "username", "login", "assignee", "member", "handle", "reviewer", "collaborator"]),
    (Class::File, &["file", "attachment", "upload", "filename"]),
];

/// Phrases in a description that say what a parameter takes.
const DESCRIPTION_PHRASES: &[(Class, &[&str])] = &[
    (Class::Email, &["email address", "e-mail address", "rfc 2822", "rfc 822", "rfc 5322"]),
    (Class::Account, &["iban", "account number", "account identification"]),
    (Class::Phone, &["phone number", "e.164"]),
    (Class::Recipient, &["recipient"]),
];

/// One parameter, as documented.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// Its own name.
    pub name: &'a str,
    /// Its parents' names, outermost first (body fields only).
    pub parents: &'a [String],
    /// Its description.
    pub description: Option<&'a str>,
    /// Its schema's `format`.
    pub format: Option<&'a str>,
}

impl Field<'_> {
    /// What it takes: by its own name, then its format, then its
    /// description, then its parents' names (`creditorAccount.name` is an
    /// account's, `instructedAmount.amount` an amount).
    pub(crate) fn class(&self) -> Class {
        let own = split_words(self.name);
        if let Some(class) = class_of_words(&own) {
            return class;
        }
        match self.format.map(str::to_ascii_lowercase).as_deref() {
            Some("email") | Some("idn-email") => return Class::Email,
            Some("uri") | Some("url") | Some("iri") => return Class::Url,
            Some("iban") => return Class::Account,
            _ => {}
        }
        if let Some(text) = self.description.map(str::to_ascii_lowercase) {
            for (class, phrases) in DESCRIPTION_PHRASES {
                if phrases.iter().any(|p| text.contains(p)) {
                    return *class;
                }
            }
        }
        // `identification` says nothing itself: its parents say whose it
        // is. A `name` or `reference` is never more than a label, and a
        // `secondaryIdentification` is something else again. Mailchimp's
        // `recipients.list_id` is the audience a campaign goes to.
        if only_id_words(&own) {
            let parents: Vec<String> = self.parents.iter().flat_map(|p| split_words(p)).collect();
            return class_of_words(&parents).unwrap_or(Class::Other);
        }
        Class::Other
    }

    /// True when it names a recipient, destination, account, URL, email,
    /// amount or file (a member or assignee is a recipient too): what a
    /// write must not leave open without the owner's confirmation.
    pub(crate) fn is_sensitive(&self) -> bool {
        !matches!(self.class(), Class::Other | Class::Currency)
    }

    /// The goal's values this field is for, typed for `schema`.
    pub(crate) fn pins(&self, stated: &[Stated], schema: &Value) -> Vec<Value> {
        let (values, matched) = self.pins_counted(stated, schema);
        // One recipient, account or amount field and several the goal
        // states ("refund $5 of the $50 charge"): which one is not fixed.
        if matched > 1 && self.is_sensitive() {
            return vec![];
        }
        values
    }

    /// The goal's values for a list field whose items `items` describes:
    /// every one that fits (a list of recipients takes them all).
    pub(crate) fn pins_list(&self, stated: &[Stated], items: &Value) -> Vec<Value> {
        self.pins_counted(stated, items).0
    }

    /// [`Field::pins`] before the one-value rule, with how many of the
    /// goal's values matched.
    fn pins_counted(&self, stated: &[Stated], schema: &Value) -> (Vec<Value>, usize) {
        let class = self.class();
        let own = split_words(self.name);
        let role = self.role();
        // A documented `const` is a one-value enum.
        let one: Option<Vec<Value>> = schema.get("const").map(|c| vec![c.clone()]);
        let documented: Option<&Vec<Value>> = schema.get("enum").and_then(Value::as_array).or(one.as_ref());
        let mut out: Vec<Value> = Vec::new();
        let mut matched = 0;
        for value in stated {
            let named = names_value(&own, value);
            // `from a@…` is the sender's, `cc b@…` a copy's; any other
            // address is a recipient's.
            let address = matches!(value.kind, Kind::Email | Kind::Phone | Kind::User | Kind::Iban);
            let same_role = !address || role == value.role.as_deref().filter(|r| *r != "to");
            let by_kind = accepts(class, &value.kind) && same_role;
            let pinned = match &value.kind {
                // An id or quoted text only where the field is named for it.
                Kind::Id | Kind::Quoted => named,
                _ => by_kind || (named && class == Class::Other),
            };
            if !pinned {
                continue;
            }
            matched += 1;
            for typed in typed(value, class, schema, self.description) {
                // A documented enum is a contract: pin within it or not at all.
                if documented.is_some_and(|e| !e.contains(&typed)) {
                    continue;
                }
                if !out.contains(&typed) {
                    out.push(typed);
                }
            }
        }
        (out, matched)
    }

    /// How surely [`Field::class`] knows: 3 by its own name, 2 by its
    /// format or (for an `identification`) its parents' names, 1 by its
    /// description, 0 not at all.
    pub(crate) fn strength(&self) -> u8 {
        let own = split_words(self.name);
        if class_of_words(&own).is_some() {
            return 3;
        }
        let format = self.format.map(str::to_ascii_lowercase);
        if matches!(format.as_deref(), Some("email" | "idn-email" | "uri" | "url" | "iri" | "iban")) {
            return 2;
        }
        if let Some(text) = self.description.map(str::to_ascii_lowercase)
            && DESCRIPTION_PHRASES.iter().any(|(_, phrases)| phrases.iter().any(|p| text.contains(p)))
        {
            return 1;
        }
        if self.class() != Class::Other {
            return 2;
        }
        0
    }

    /// Whether it is sensitive, its class, and whether it takes an address.
    pub(crate) fn class_and_address(&self) -> (bool, Class, bool) {
        (self.is_sensitive(), self.class(), self.takes_address())
    }

    /// True when it takes an address of some kind (an email, a phone, a
    /// user, a recipient).
    pub(crate) fn takes_address(&self) -> bool {
        matches!(self.class(), Class::Email | Class::Phone | Class::User | Class::Recipient)
    }

    /// Whose address it takes: `from` (sender, reply-to), `cc`, `bcc`, or
    /// none (a recipient).
    fn role(&self) -> Option<&'static str> {
        let mut words = split_words(self.name);
        words.extend(self.parents.iter().flat_map(|p| split_words(p)));
        let has = |w: &str| words.iter().any(|x| x == w);
        if has("bcc") {
            Some("bcc")
        } else if has("cc") {
            Some("cc")
        } else if has("reply") || has("replyto") {
            // Where answers go: only an address the goal gives as `reply-to`.
            Some("reply")
        } else if ["from", "sender", "debtor", "creator", "organizer", "payer"].iter().any(|w| has(w)) {
            Some("from")
        } else {
            None
        }
    }
}

/// Words that name no kind of value themselves (`email_address`,
/// `channel_id`, `account.identification`): the word before them does.
const ID_WORDS: &[&str] =
    &["address", "id", "ids", "list", "number", "no", "value", "identification", "identifier", "code", "key"];

fn class_of_words(words: &[String]) -> Option<Class> {
    // The last word decides (`email_subject` is a subject); earlier words
    // only when the later ones name nothing (`email_address`, `channel_name`).
    for word in words.iter().rev() {
        if let Some((class, _)) = CLASS_WORDS.iter().find(|(_, list)| list.contains(&word.as_str())) {
            return Some(*class);
        }
        if !ID_WORDS.contains(&word.as_str()) && word != "name" {
            return None;
        }
    }
    None
}

/// True when a field's words are all id words (`id`, `list_id`): the name
/// says nothing of what it identifies.
fn only_id_words(own: &[String]) -> bool {
    !own.is_empty() && own.iter().all(|w| ID_WORDS.contains(&w.as_str()))
}

/// The kinds a reference object's `type` documents (`file`, `comment`),
/// lower case; none for an object without a documented `type`.
fn reference_kinds(properties: &serde_json::Map<String, Value>) -> Vec<String> {
    properties.get("type").map(documented_strings).unwrap_or_default()
}

/// True when `value` is an id the goal gives for one of `kinds` (`file
/// 987` for `{"type": "file", "id": …}`).
fn refers_to(value: &Stated, kinds: &[String]) -> bool {
    value.kind == Kind::Id && value.noun.as_ref().is_some_and(|n| kinds.iter().any(|k| crate::goal::singular(k) == *n))
}

/// True when `own` (a field's words) names `noun`, alone or with an id word
/// before or after it (`issue_number`, Trello's `idList`).
fn names(own: &[String], noun: &str) -> bool {
    const IDS: &[&str] = &["id", "gid", "number", "no", "name", "ref", "key", "code"];
    let noun = crate::goal::singular(&noun.to_ascii_lowercase());
    match own {
        [one] => *one == noun,
        [one, id] if IDS.contains(&id.as_str()) => *one == noun,
        [id, one] if IDS.contains(&id.as_str()) => *one == noun,
        _ => false,
    }
}

/// True when `own` names the value's noun ([`names`]), or its compound
/// noun as a whole (`public_key` for "public key 'ssh-ed25519 …'").
fn names_value(own: &[String], value: &Stated) -> bool {
    let Some(noun) = &value.noun else { return false };
    names(own, noun)
        || value
            .qualifier
            .as_ref()
            .is_some_and(|q| matches!(own, [a, b] if a == q && *b == crate::goal::singular(noun)))
}

pub(crate) fn accepts(class: Class, kind: &Kind) -> bool {
    matches!(
        (class, kind),
        (Class::Email | Class::Recipient, Kind::Email)
            | (Class::Phone | Class::Recipient, Kind::Phone)
            | (Class::Url, Kind::Url)
            | (Class::Account, Kind::Iban)
            | (Class::Channel | Class::Recipient, Kind::Channel)
            | (Class::User | Class::Recipient, Kind::User)
            // Many APIs take a user by email (Box's `login`, an assignee).
            | (Class::User, Kind::Email)
            | (Class::Amount, Kind::Amount { .. })
            | (Class::Currency, Kind::Amount { currency: Some(_) })
    )
}

/// The value as `schema` types it; none when it does not fit. A channel is
/// allowed with and without its `#`.
fn typed(value: &Stated, class: Class, schema: &Value, description: Option<&str>) -> Vec<Value> {
    let types = schema_types(schema);
    let string_ok = types.is_empty() || types.contains(&"string");
    match (&value.kind, class) {
        (Kind::Amount { currency: Some(code) }, Class::Currency) => {
            if !string_ok {
                return vec![];
            }
            vec![json!(code), json!(code.to_ascii_lowercase())]
        }
        (Kind::Amount { .. }, _) => amount(&value.value, &types, description),
        (Kind::Channel, _) if string_ok => vec![json!(value.value), json!(format!("#{}", value.value))],
        (Kind::Id, _) if !string_ok => value
            .value
            .parse::<i64>()
            .ok()
            .filter(|_| types.contains(&"integer") || types.contains(&"number"))
            .map(|n| json!(n))
            .into_iter()
            .collect(),
        _ if string_ok => vec![json!(value.value)],
        _ => vec![],
    }
}

/// An amount as the field takes it: a string as written, a number, or an
/// integer (in minor units when the description says so).
fn amount(text: &str, types: &[&str], description: Option<&str>) -> Vec<Value> {
    let plain = text.replace(',', "");
    let minor = description.map(str::to_ascii_lowercase).is_some_and(|d| {
        ["cents", "smallest currency unit", "minor unit", "lowest denomination", "pence"].iter().any(|p| d.contains(p))
    });
    let mut out = Vec::new();
    if types.is_empty() || types.contains(&"string") {
        out.push(json!(plain));
    }
    if types.contains(&"integer") {
        let (whole, fraction) = plain.split_once('.').unwrap_or((&plain, ""));
        if minor {
            let cents = format!("{whole}{:0<2}", fraction);
            if fraction.len() <= 2
                && let Ok(n) = cents.parse::<i64>()
            {
                out.push(json!(n));
            }
        } else if fraction.bytes().all(|b| b == b'0')
            && let Ok(n) = whole.parse::<i64>()
        {
            out.push(json!(n));
        }
    } else if types.contains(&"number")
        && let Ok(n) = plain.parse::<f64>()
    {
        out.push(json!(n));
    }
    out
}

fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => vec![],
    }
}

/// What pinning did to one body.
#[derive(Debug, Default)]
pub(crate) struct BodyPins {
    /// `field = value` (dotted path) for each pinned field.
    pub pinned: Vec<String>,
}

/// Pins, in the object schema `schema` (as the rule will carry it), every
/// field the goal states a value for, at any depth: `const`/`enum`, made
/// required up its chain of parents, each of them closed to undocumented
/// properties. Also lists the sensitive fields left open.
///
/// With `require` false (an update: what it does not send stays as it is)
/// a pinned field may be left out, but not sent with another value.
pub(crate) fn pin_body(
    schema: &mut Value,
    stated: &[Stated],
    descriptions: &std::collections::BTreeMap<String, String>,
    require: bool,
) -> BodyPins {
    let mut pins = BodyPins::default();
    walk(schema, &mut Vec::new(), stated, descriptions, require, &mut pins);
    pins
}

/// Returns whether anything at or under `schema` was pinned. A pinned leaf
/// is required in its own object; its parents stay as documented (leaving
/// out a whole object is the upstream's to refuse), each closed to
/// undocumented properties.
fn walk(
    schema: &mut Value,
    at: &mut Vec<String>,
    stated: &[Stated],
    descriptions: &std::collections::BTreeMap<String, String>,
    require: bool,
    pins: &mut BodyPins,
) -> bool {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { return false };
    let field = |name: &'_ str, at: &[String], property: &Value| -> (Class, u8, Vec<Value>) {
        let dotted = if at.is_empty() { name.to_owned() } else { format!("{}.{name}", at.join(".")) };
        let f = Field {
            name,
            parents: at,
            description: descriptions.get(&dotted).map(String::as_str),
            format: property.get("format").and_then(Value::as_str),
        };
        let values = if schema_types(property) == ["array"] {
            f.pins_list(stated, property.get("items").unwrap_or(&json!({})))
        } else {
            f.pins(stated, property)
        };
        (f.class(), f.strength(), values)
    };
    // Each leaf's candidates; then a currency only beside the amount it
    // qualifies, and a value only in the siblings that name it most
    // strongly (an IBAN goes to `identification`, not also to
    // `secondaryIdentification`).
    let mut leaves: Vec<(String, Class, u8, Vec<Value>)> = properties
        .iter()
        .filter(|(_, p)| p.get("properties").is_none())
        .map(|(name, property)| {
            let (class, strength, values) = field(name, at, property);
            (name.clone(), class, strength, values)
        })
        .collect();
    // A reference object (`{"type": "file", "id": …}`, as in Box or
    // JSON:API): its id is named by the noun its `type` documents.
    let kinds = reference_kinds(properties);
    for (name, _, _, values) in &mut leaves {
        if values.is_empty() && only_id_words(&split_words(name)) {
            let property = &properties[name.as_str()];
            let of_kind = stated.iter().filter(|s| refers_to(s, &kinds));
            let found: Vec<Value> = of_kind.flat_map(|s| typed(s, Class::Other, property, None)).collect();
            if found.len() == 1 {
                *values = found;
            }
        }
    }
    let amount_here = leaves.iter().any(|(_, class, _, values)| *class == Class::Amount && !values.is_empty());
    for leaf in &mut leaves {
        if leaf.1 == Class::Currency && !amount_here {
            leaf.3.clear();
        }
    }
    let best: Vec<(Value, u8)> =
        leaves.iter().flat_map(|(_, _, strength, values)| values.iter().map(move |v| (v.clone(), *strength))).collect();
    for leaf in &mut leaves {
        let strength = leaf.2;
        leaf.3.retain(|v| !best.iter().any(|(b, s)| b == v && *s > strength));
    }
    let mut pinned_here: Vec<String> = Vec::new();
    let mut nested_pinned = false;
    for (name, property) in properties.iter_mut() {
        at.push(name.clone());
        let dotted = at.join(".");
        if property.get("properties").is_some() {
            nested_pinned |= walk(property, at, stated, descriptions, require, pins);
        } else {
            let values = leaves.iter().find(|l| l.0 == *name).map(|l| l.3.clone()).unwrap_or_default();
            if pin_leaf(property, values, &dotted, pins) {
                pinned_here.push(name.clone());
            }
        }
        at.pop();
    }
    if pinned_here.is_empty() && !nested_pinned {
        return false;
    }
    if require && !pinned_here.is_empty() {
        let required = schema
            .as_object_mut()
            .map(|o| o.entry("required").or_insert_with(|| json!([])))
            .and_then(Value::as_array_mut);
        if let Some(required) = required {
            for name in pinned_here {
                if !required.iter().any(|r| r.as_str() == Some(name.as_str())) {
                    required.push(json!(name));
                }
            }
        }
    }
    schema["additionalProperties"] = json!(false);
    true
}

fn pin_leaf(property: &mut Value, values: Vec<Value>, dotted: &str, pins: &mut BodyPins) -> bool {
    let array = schema_types(property) == ["array"];
    let target = if array { property.get_mut("items") } else { Some(&mut *property) };
    // Nothing to pin into (`true` as a schema): claim nothing.
    let Some(Value::Object(object)) = target else { return false };
    if values.is_empty() {
        return false;
    }
    object.remove("const");
    object.remove("enum");
    if values.len() == 1 {
        object.insert("const".into(), values[0].clone());
    } else {
        object.insert("enum".into(), Value::Array(values.clone()));
    }
    if array {
        property["minItems"] = json!(1);
    }
    let shown: Vec<String> = values.iter().map(Value::to_string).collect();
    pins.pinned.push(format!("{dotted} = {}", shown.join(" | ")));
    true
}

/// Narrows each field of a body schema documented with string `enum`s (or
/// `const`s) to the values the goal chooses ([`Goal::chooses`]: the
/// droplet action `type` to `reboot` for "reboot droplet 7"): the goal
/// chose among the documented values, and a call that sends another one
/// does something else. A field is the same field wherever its values are
/// documented (each `anyOf`/`oneOf`/`allOf` variant, its array `items`),
/// so the choice is made over all of them, and every place that documents
/// values is narrowed: to the chosen ones (and `null`, if documented), or
/// to `false` where it documents none of them. Chosen fields are not made
/// required. Returns `field = values` for each field narrowed.
pub(crate) fn narrow_choices(schema: &mut Value, goal: &Goal) -> Vec<String> {
    let mut documented: Vec<(String, Vec<String>)> = Vec::new();
    walk_values(schema, &mut Vec::new(), &mut 5000, &mut |at, values, _| {
        let dotted = at.join(".");
        match documented.iter_mut().find(|(d, _)| *d == dotted) {
            Some((_, all)) => {
                for v in values {
                    if !all.contains(v) {
                        all.push(v.clone());
                    }
                }
            }
            None => documented.push((dotted, values.to_vec())),
        }
    });
    let chosen: Vec<(String, Vec<String>)> = documented
        .into_iter()
        .filter_map(|(dotted, all)| {
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            goal.chooses(&all).map(|asked| (dotted, asked))
        })
        .collect();
    if chosen.is_empty() {
        return vec![];
    }
    // The same walk: each place the choice was made over is narrowed.
    walk_values(schema, &mut Vec::new(), &mut 5000, &mut |at, _, place| {
        if let Some((_, asked)) = chosen.iter().find(|(d, _)| *d == at.join(".")) {
            narrow_place(place, asked);
        }
    });
    chosen.iter().map(|(dotted, asked)| format!("{dotted} = {}", asked.join(" | "))).collect()
}

/// What [`walk_values`] calls with a field's path, values and schema.
type ValuesFound<'f> = dyn FnMut(&[String], &[String], &mut Value) + 'f;

/// Calls `found` with the path, the string values and the schema of every
/// `enum`/`const` in `schema` below its root, through properties,
/// composition and items. A schema `found` changes is walked as changed.
fn walk_values(schema: &mut Value, at: &mut Vec<String>, budget: &mut usize, found: &mut ValuesFound<'_>) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    if !at.is_empty()
        && let Some(values) = string_values(schema)
    {
        found(at, &values, schema);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
            walk_values(part, at, budget, found);
        }
    }
    if let Some(items) = schema.get_mut("items") {
        walk_values(items, at, budget, found);
    }
    for (name, property) in schema.get_mut("properties").and_then(Value::as_object_mut).into_iter().flatten() {
        at.push(name.clone());
        walk_values(property, at, budget, found);
        at.pop();
    }
}

/// Narrows one place documenting a chosen field's values to the `asked`
/// ones (and `null`, if documented), or to `false` if it documents none.
fn narrow_place(schema: &mut Value, asked: &[String]) {
    let own: Vec<Value> = match (schema.get("const"), schema.get("enum")) {
        (Some(one), _) => vec![one.clone()],
        (None, Some(Value::Array(many))) => many.clone(),
        _ => vec![],
    };
    let kept: Vec<Value> = own
        .iter()
        .filter(|v| v.is_null() || v.as_str().is_some_and(|v| asked.iter().any(|a| a == v)))
        .cloned()
        .collect();
    if !kept.iter().any(|v| !v.is_null()) {
        *schema = Value::Bool(false);
        return;
    }
    if let Some(map) = schema.as_object_mut() {
        map.remove("const");
        map.insert("enum".into(), Value::Array(kept));
    }
}

/// A schema's documented string values: its `const`, or its `enum`
/// (`null` left out), when there are some and all the others are strings.
fn string_values(schema: &Value) -> Option<Vec<String>> {
    let values: Vec<&Value> = match (schema.get("const"), schema.get("enum")) {
        (Some(one), _) => vec![one],
        (None, Some(Value::Array(many))) => many.iter().filter(|v| !v.is_null()).collect(),
        _ => return None,
    };
    let strings: Option<Vec<String>> = values.iter().map(|v| v.as_str().map(str::to_owned)).collect();
    strings.filter(|s| !s.is_empty())
}

/// A schema's documented string values (its `const`, or its `enum`), lower
/// case.
fn documented_strings(schema: &Value) -> Vec<String> {
    string_values(schema).unwrap_or_default().iter().map(|v| v.to_ascii_lowercase()).collect()
}

/// Keywords that compose a schema out of others: below one, which fields a
/// rule allows cannot be read field by field.
const COMPOSED: &[&str] = &["oneOf", "anyOf", "allOf", "not", "$ref", "if", "patternProperties"];

/// Every sensitive leaf field a documented body schema describes, at any
/// depth (through `allOf`/`oneOf`/`anyOf` parts and array items), as its
/// path of property names; a field the document itself fixes (`const`, or
/// an `enum`) is left out.
fn documented_sensitive(schema: &Value, descriptions: &std::collections::BTreeMap<String, String>) -> Vec<Vec<String>> {
    documented_leaves(schema, descriptions, &|field, _| field.is_sensitive())
}

/// What [`documented_leaves`] keeps: a field, with the object schema it
/// is a property of.
type Keep<'k> = &'k dyn Fn(&Field<'_>, &Value) -> bool;

/// Every leaf field of a documented body schema that `keep` keeps and the
/// document does not fix (`const`, `enum`), as its path of property names.
fn documented_leaves(
    schema: &Value,
    descriptions: &std::collections::BTreeMap<String, String>,
    keep: Keep<'_>,
) -> Vec<Vec<String>> {
    fn walk(
        schema: &Value,
        at: &mut Vec<String>,
        descriptions: &std::collections::BTreeMap<String, String>,
        keep: Keep<'_>,
        out: &mut Vec<Vec<String>>,
        budget: &mut usize,
    ) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        for key in ["allOf", "oneOf", "anyOf"] {
            for part in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
                walk(part, at, descriptions, keep, out, budget);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(items, at, descriptions, keep, out, budget);
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
        for (name, property) in properties {
            at.push(name.clone());
            let nested = property.get("properties").is_some()
                || ["allOf", "oneOf", "anyOf"].iter().any(|k| property.get(*k).is_some())
                || property.get("items").is_some_and(|i| i.get("properties").is_some());
            if nested {
                walk(property, at, descriptions, keep, out, budget);
            } else {
                let dotted = at.join(".");
                let field = Field {
                    name,
                    parents: &at[..at.len() - 1],
                    description: descriptions.get(&dotted).map(String::as_str),
                    format: property.get("format").and_then(Value::as_str),
                };
                let fixed = |s: &Value| s.get("enum").is_some() || s.get("const").is_some();
                let fixed = fixed(property) || property.get("items").is_some_and(fixed);
                if keep(&field, schema) && !fixed && !out.contains(at) {
                    out.push(at.clone());
                }
            }
            at.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), descriptions, keep, &mut out, &mut 5000);
    out
}

/// True when a parameter called `name` is named for one of `values`, ids
/// and quoted names the goal gives for something (`payment_id` for
/// "payment PAY-1").
pub(crate) fn named_for(name: &str, values: &[Stated]) -> bool {
    let own = split_words(name);
    values.iter().any(|s| matches!(s.kind, Kind::Id | Kind::Quoted) && names_value(&own, s))
}

/// The fields of the documented body `doc` named for what another
/// operation acts on (`payment_id` when the goal's `payment PAY-1` is the
/// payment an earlier call reads, or the `id` of an `{"type": "file"}`
/// reference when it is "file 987") that a rule with body `rule` leaves
/// open: the goal fixes that target for the other operation only, so here
/// it is open, and the write waits for the owner.
pub(crate) fn open_targets(
    doc: Option<&crate::openapi::BodyDoc>,
    rule: Option<&Value>,
    elsewhere: &[Stated],
) -> Vec<String> {
    let Some(doc) = doc else { return vec![] };
    let named = |field: &Field<'_>, object: &Value| {
        let reference = only_id_words(&split_words(field.name)) && {
            let kinds = object.get("properties").and_then(Value::as_object).map(reference_kinds).unwrap_or_default();
            elsewhere.iter().any(|s| refers_to(s, &kinds))
        };
        named_for(field.name, elsewhere) || reference
    };
    documented_leaves(&doc.schema, &doc.descriptions, &named)
        .into_iter()
        .filter(|path| match rule {
            None | Some(Value::Bool(false)) => false,
            Some(Value::Bool(true)) => true,
            Some(schema) => reach(schema, path) == Reach::Open,
        })
        .map(|path| path.join("."))
        .collect()
}

/// What a rule's body schema lets through at one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach<'a> {
    /// The field may not be sent.
    Refused,
    /// Only these fixed values (its `const`, `enum`) may be sent.
    Fixed(&'a Value),
    /// Any value may be sent (or the schema cannot be read that far).
    Open,
}

/// What `schema` (a rule's body) lets through at `path`, array items read
/// through, composed schemas read as open.
fn reach<'a>(schema: &'a Value, path: &[String]) -> Reach<'a> {
    let mut node = schema;
    for segment in path {
        node = items(node);
        match node {
            Value::Bool(false) => return Reach::Refused,
            Value::Object(o) if !COMPOSED.iter().any(|k| o.contains_key(*k)) => {}
            _ => return Reach::Open,
        }
        match node.get("properties").and_then(|p| p.get(segment)) {
            Some(child) => node = child,
            None => match node.get("additionalProperties") {
                Some(Value::Bool(false)) => return Reach::Refused,
                Some(other @ Value::Object(_)) => node = other,
                _ => return Reach::Open,
            },
        }
    }
    let node = items(node);
    match node {
        Value::Bool(false) => Reach::Refused,
        Value::Object(o) if o.contains_key("const") || o.contains_key("enum") => Reach::Fixed(node),
        _ => Reach::Open,
    }
}

/// Array schemas are read through to their items.
fn items(mut node: &Value) -> &Value {
    while let Some(items) = node.get("items").filter(|_| node.get("properties").is_none()) {
        node = items;
    }
    node
}

/// The sensitive fields of the documented body `doc` that a rule with body
/// `rule` lets through with any value: all of them for `true`, none for no
/// body, and for a schema each field it does not refuse or fix. The
/// document says which fields exist, so a rule cannot hide one by leaving
/// it undeclared in an open object. A field fixed to a value the goal does
/// not state (`stated`) counts as open too: a drafter may pin only what the
/// goal says, not an address it read in the docs.
pub(crate) fn open_body(doc: Option<&crate::openapi::BodyDoc>, rule: Option<&Value>, stated: &[Stated]) -> Vec<String> {
    let Some(doc) = doc else { return vec![] };
    let fields = documented_sensitive(&doc.schema, &doc.descriptions);
    let mut open = Vec::new();
    for path in &fields {
        let shown = path.join(".");
        match rule {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => open.push(shown),
            Some(schema) => match reach(schema, path) {
                Reach::Refused => {}
                Reach::Open => open.push(shown),
                Reach::Fixed(node) => {
                    let values: Vec<&Value> = match (node.get("const"), node.get("enum")) {
                        (Some(one), _) => vec![one],
                        (None, Some(Value::Array(many))) => many.iter().collect(),
                        _ => vec![],
                    };
                    if !values.iter().all(|v| stated_value(v, stated)) {
                        open.push(format!("{shown} (pinned to a value the goal does not state)"));
                    }
                }
            },
        }
    }
    open
}

/// True when `value` is one the goal states, in any of the forms pinning
/// writes it (a channel with or without `#`, a currency code in either
/// case, an amount in major or minor units, an id as a number).
pub(crate) fn stated_value(value: &Value, stated: &[Stated]) -> bool {
    stated.iter().any(|s| match value {
        Value::String(text) => {
            text.eq_ignore_ascii_case(&s.value)
                || text.strip_prefix('#').is_some_and(|t| t == s.value)
                || matches!(&s.kind, Kind::Amount { currency: Some(code) } if text.eq_ignore_ascii_case(code))
                || (matches!(s.kind, Kind::Amount { .. }) && *text == s.value.replace(',', ""))
        }
        Value::Number(n) => {
            let Some(n) = n.as_f64() else { return false };
            let Ok(v) = s.value.replace(',', "").parse::<f64>() else { return false };
            (n - v).abs() < 1e-9 || (matches!(s.kind, Kind::Amount { .. }) && (n - v * 100.0).abs() < 1e-6)
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::goal::Goal;

    fn field<'a>(name: &'a str, parents: &'a [String]) -> Field<'a> {
        Field { name, parents, description: None, format: None }
    }

    #[test]
    fn fields_are_classed_by_name_format_description_and_parents() {
        assert_eq!(field("to", &[]).class(), Class::Recipient);
        assert_eq!(field("email_address", &[]).class(), Class::Email);
        assert_eq!(field("channel_id", &[]).class(), Class::Channel);
        assert_eq!(field("title", &[]).class(), Class::Other);
        let parents = ["Data".to_owned(), "CreditorAccount".to_owned()];
        assert_eq!(field("Identification", &parents).class(), Class::Account);
        assert_eq!(field("list_id", &["recipients".to_owned()]).class(), Class::Recipient);
        let raw = Field { name: "raw", parents: &[], description: Some("An RFC 2822 message"), format: None };
        assert_eq!(raw.class(), Class::Email);
        let home = Field { name: "home", parents: &[], description: None, format: Some("uri") };
        assert!(home.is_sensitive());
        // An assignee receives the work: open, it needs confirming.
        assert!(field("assignee", &[]).is_sensitive());
        assert!(!field("title", &[]).is_sensitive());
    }

    #[test]
    fn stated_values_pin_nested_fields_each_required_in_its_own_object() {
        let goal = Goal::parse("pay 84.20 EUR to IBAN DE89370400440532013000 with reference INV-2291");
        let mut schema = json!({"type": "object", "additionalProperties": false, "properties": {
            "Initiation": {"type": "object", "properties": {
                "InstructedAmount": {"type": "object", "properties": {
                    "Amount": {"type": "string"}, "Currency": {"type": "string"}}},
                "CreditorAccount": {"type": "object", "properties": {
                    "Identification": {"type": "string"}, "Name": {"type": "string"}}},
                "Reference": {"type": "string"}}}}});
        let pins = pin_body(&mut schema, goal.stated(), &BTreeMap::new(), true);
        let initiation = &schema["properties"]["Initiation"];
        assert_eq!(initiation["properties"]["InstructedAmount"]["properties"]["Amount"]["const"], "84.20");
        assert_eq!(
            initiation["properties"]["InstructedAmount"]["properties"]["Currency"]["enum"],
            json!(["EUR", "eur"])
        );
        assert_eq!(
            initiation["properties"]["CreditorAccount"]["properties"]["Identification"]["const"],
            "DE89370400440532013000"
        );
        assert_eq!(initiation["properties"]["Reference"]["const"], "INV-2291");
        // Pinned leaves are required in their own objects; parents stay as documented.
        assert_eq!(initiation["required"], json!(["Reference"]));
        assert_eq!(initiation["properties"]["CreditorAccount"]["required"], json!(["Identification"]));
        assert!(schema.get("required").is_none());
        assert_eq!(initiation["additionalProperties"], json!(false));
        assert_eq!(pins.pinned.len(), 4, "{:?}", pins.pinned);
    }

    fn narrowed(goal: &str, schema: &Value) -> (Value, Vec<String>) {
        let goal = Goal::parse(goal);
        let mut schema = schema.clone();
        let lines = narrow_choices(&mut schema, &goal);
        (schema, lines)
    }

    #[test]
    fn a_documented_enum_is_narrowed_to_the_values_the_goal_asks_for_in_words() {
        let action = json!({"type": "object", "required": ["type"], "properties": {
            "type": {"type": "string", "enum": ["reboot", "power_off", "rebuild", "snapshot"]},
            "image": {"type": "string"}}});
        let (schema, lines) = narrowed("Reboot droplet 314159265, it stopped answering", &action);
        assert_eq!(schema["properties"]["type"]["enum"], json!(["reboot"]));
        assert_eq!(lines, vec!["type = reboot"]);
        let (schema, _) = narrowed("power off droplet 7 and then take a snapshot", &action);
        assert_eq!(schema["properties"]["type"]["enum"], json!(["power_off", "snapshot"]));
        // Nothing named, or another value named in a way that does not
        // count (negated: the negation may reach further than meant), leaves
        // the enum whole.
        assert_eq!(narrowed("fix droplet 7", &action).0, action);
        assert_eq!(narrowed("reboot droplet 7, do not rebuild it", &action).0, action);
        assert_eq!(narrowed("power off droplet 7 without data loss and take a snapshot", &action).0, action);
        // Quoted text is content, not a choice.
        assert_eq!(narrowed("post 'time to reboot' to #ops", &action).0, action);
    }

    #[test]
    fn a_choice_holds_in_every_variant_so_no_variant_sends_another_value() {
        // DigitalOcean: one variant per group of actions, each with its own `type` values.
        let actions = json!({"anyOf": [
            {"type": "object", "required": ["type"], "properties": {
                "type": {"type": "string", "enum": ["reboot", "power_off"]}}},
            {"type": "object", "required": ["type"], "properties": {
                "type": {"type": "string", "enum": ["rebuild"]}, "image": {"type": "string"}}}]});
        let (schema, _) = narrowed("reboot droplet 7", &actions);
        assert_eq!(schema["anyOf"][0]["properties"]["type"]["enum"], json!(["reboot"]));
        assert_eq!(schema["anyOf"][1]["properties"]["type"], json!(false));
        // Values in `const`, in list items and beside `null` are narrowed too.
        let mixed = json!({"type": "object", "properties": {
            "type": {"anyOf": [{"enum": ["reboot", "power_off", null]}, {"const": "rebuild"}]},
            "scopes": {"type": "array", "items": {"type": "string", "enum": ["repo", "gist", "admin"]}}}});
        let (schema, _) = narrowed("reboot droplet 7 and grant it the gist scope", &mixed);
        assert_eq!(schema["properties"]["type"]["anyOf"][0]["enum"], json!(["reboot", null]));
        assert_eq!(schema["properties"]["type"]["anyOf"][1], json!(false));
        assert_eq!(schema["properties"]["scopes"]["items"]["enum"], json!(["gist"]));
        let validator = jsonschema::validator_for(&schema).expect("a schema");
        assert!(validator.is_valid(&json!({"type": "reboot"})));
        assert!(!validator.is_valid(&json!({"type": "rebuild", "image": "ubuntu-22-04-x64"})));
        assert!(!validator.is_valid(&json!({"type": "power_off"})));
    }

    #[test]
    fn short_enum_values_and_the_goals_own_verbs_are_not_read_as_choices() {
        let record = json!({"type": "object", "properties": {
            "type": {"type": "string", "enum": ["A", "AAAA", "MX", "TXT"]}}});
        assert_eq!(
            narrowed("Add an A record for staging.example.com", &record).0["properties"]["type"]["enum"],
            json!(["A"])
        );
        // The article is not the record type.
        assert!(narrowed("add a record for staging.example.com", &record).1.is_empty());
        // "open" is the goal's verb here, not the issue's state.
        let issue = json!({"type": "object", "properties": {"state": {"type": "string", "enum": ["open", "closed"]}}});
        assert!(narrowed("open a new issue and close issue 5", &issue).1.is_empty());
        // Nor does a verb beside a value that is not one: "comment" could be
        // the review's event, so `REQUEST_CHANGES` is not the only one.
        let review = json!({"type": "object", "properties": {
            "event": {"type": "string", "enum": ["APPROVE", "REQUEST_CHANGES", "COMMENT"]}}});
        assert!(narrowed("comment on pull 5, or request changes if tests fail", &review).1.is_empty());
        assert_eq!(narrowed("approve pull 5", &review).0["properties"]["event"]["enum"], json!(["APPROVE"]));
        // Values of punctuation or negation are never read, and their
        // mention leaves the enum whole.
        let reaction = json!({"type": "object", "properties": {
            "content": {"type": "string", "enum": ["+1", "-1", "rocket", "heart"]}}});
        assert!(narrowed("react with a thumbs up (+1) and a rocket", &reaction).1.is_empty());
        let reason = json!({"type": "object", "properties": {
            "state_reason": {"type": "string", "enum": ["completed", "not_planned", "reopened"]}}});
        assert!(narrowed("close 5 as not planned; the work was completed elsewhere", &reason).1.is_empty());
    }

    #[test]
    fn a_reference_objects_id_is_pinned_by_the_noun_its_type_documents() {
        let goal = Goal::parse("Comment 'Approved for print' on file 987654321");
        let mut schema = json!({"type": "object", "properties": {
            "message": {"type": "string"},
            "item": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["file", "comment"]}, "id": {"type": "string"}}}}});
        pin_body(&mut schema, goal.stated(), &BTreeMap::new(), true);
        assert_eq!(schema["properties"]["item"]["properties"]["id"]["const"], "987654321");
        // A noun the type does not document pins nothing.
        let goal = Goal::parse("Comment 'Approved' on folder 987654321");
        let mut schema = json!({"type": "object", "properties": {"item": {"type": "object", "properties": {
            "type": {"type": "string", "enum": ["file", "comment"]}, "id": {"type": "string"}}}}});
        pin_body(&mut schema, goal.stated(), &BTreeMap::new(), true);
        assert!(schema["properties"]["item"]["properties"]["id"].get("const").is_none());
    }

    #[test]
    fn a_compound_noun_names_the_field_it_spells() {
        let goal =
            Goal::parse("Add my SSH public key 'ssh-ed25519 AAAAfake0001 alice@laptop' under the name 'alice-2025'");
        let stated = goal.stated();
        assert_eq!(
            field("public_key", &[]).pins(stated, &json!({"type": "string"})),
            vec![json!("ssh-ed25519 AAAAfake0001 alice@laptop")]
        );
        assert_eq!(field("name", &[]).pins(stated, &json!({"type": "string"})), vec![json!("alice-2025")]);
        assert!(field("private_key", &[]).pins(stated, &json!({"type": "string"})).is_empty());
    }

    #[test]
    fn integer_amounts_are_pinned_in_minor_units_only_when_documented_so() {
        assert_eq!(amount("84.20", &["integer"], Some("Amount in cents")), vec![json!(8420)]);
        assert_eq!(amount("84.20", &["integer"], None), Vec::<Value>::new());
        assert_eq!(amount("84", &["integer"], None), vec![json!(84)]);
        assert_eq!(amount("84.5", &["number"], None), vec![json!(84.5)]);
    }

    #[test]
    fn an_id_pins_only_the_field_its_noun_names() {
        let goal = Goal::parse("label issue 42 as stale");
        let stated = goal.stated();
        assert_eq!(field("issue_number", &[]).pins(stated, &json!({"type": "integer"})), vec![json!(42)]);
        assert!(field("milestone", &[]).pins(stated, &json!({"type": "integer"})).is_empty());
    }
}

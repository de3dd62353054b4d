//! A file that fits the schema, read without the whole YAML tree (~100 MB at 100k VIPs): the
//! top-level keys other than `vips` form one small tree, and each VIP is read into a tree of its
//! own that is turned into a `RawVip` and dropped before the next. Every value is still
//! deserialized from a YAML tree, as the full path does, so both accept and refuse the same
//! things (`name: 123` is refused as a number, not taken as the text "123", which serde_yaml's
//! text reader would do). Any error returns None: the full path then reports every problem with
//! its position. A leaf: text in, raw config out.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::raw::{RawConfig, RawVip};

/// The raw config of `text`, or None when anything at all is wrong with it.
pub fn parse(text: &str) -> Option<RawConfig> {
    let split = serde_yaml::Deserializer::from_str(text)
        .deserialize_map(SplitVisitor)
        .ok()?;
    let mut raw = RawConfig::deserialize(Value::Mapping(split.rest)).ok()?;
    raw.vips = split.vips;
    Some(raw)
}

struct Split {
    rest: Mapping,
    vips: Vec<RawVip>,
}

struct SplitVisitor;

impl<'de> Visitor<'de> for SplitVisitor {
    type Value = Split;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Split, A::Error> {
        let mut rest = Mapping::new();
        let mut vips: Option<Vec<RawVip>> = None;
        // A repeated key is an error in the full path's tree too.
        let duplicate = || de::Error::custom("duplicate key");
        while let Some(key) = map.next_key::<Value>()? {
            if key.as_str() == Some("vips") {
                if vips.is_some() {
                    return Err(duplicate());
                }
                vips = Some(map.next_value_seed(VipsSeed)?);
            } else {
                if rest.contains_key(&key) {
                    return Err(duplicate());
                }
                let value: Value = map.next_value()?;
                rest.insert(key, value);
            }
        }
        Ok(Split {
            rest,
            vips: vips.unwrap_or_default(),
        })
    }
}

struct VipsSeed;

impl<'de> DeserializeSeed<'de> for VipsSeed {
    type Value = Vec<RawVip>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<RawVip>, D::Error> {
        d.deserialize_seq(VipsVisitor)
    }
}

struct VipsVisitor;

impl<'de> Visitor<'de> for VipsVisitor {
    type Value = Vec<RawVip>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of VIPs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RawVip>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(tree) = seq.next_element::<Value>()? {
            out.push(RawVip::deserialize(tree).map_err(de::Error::custom)?);
        }
        Ok(out)
    }
}

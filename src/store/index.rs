//! Secondary indexes of the cache: objects by keys taken from fields that never
//! change, held as compactly as the cache's size allows.
//!
//! With 10,000 live grants an index entry per object is paid 10,000 times
//! (`cargo bench --bench memory`, docs/performance.md). So an entry is the
//! object's name and its namespace, the namespace shared by every entry of
//! that namespace, and not a kube [`ObjectRef`] (which also carries the uid and
//! the resourceVersion: ~100 bytes more); and a key with a single object (a
//! request's review) holds it inline, not in a set of its own (a hash set
//! allocates room for four at least: ~450 bytes).

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    sync::{Arc, RwLock},
};

use kube::{
    runtime::reflector::{ObjectRef, Store},
    Resource,
};

use super::Change;

/// An object by namespace (shared) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Named {
    namespace: Option<Arc<str>>,
    name: Box<str>,
}

impl Named {
    fn to_ref<K: Resource<DynamicType = ()>>(&self) -> ObjectRef<K> {
        let r = ObjectRef::new(&self.name);
        match &self.namespace {
            Some(ns) => r.within(ns),
            None => r,
        }
    }
}

/// The objects under one key: one inline, or a set.
#[derive(Debug)]
enum Refs {
    One(Named),
    Many(HashSet<Named>),
}

impl Refs {
    fn insert(&mut self, named: Named) {
        match self {
            Refs::One(one) if *one == named => {}
            Refs::One(one) => {
                let first = one.clone();
                *self = Refs::Many(HashSet::from([first, named]));
            }
            Refs::Many(set) => {
                set.insert(named);
            }
        }
    }

    /// Removes `named`; whether nothing is left.
    fn remove(&mut self, named: &Named) -> bool {
        match self {
            Refs::One(one) => one == named,
            Refs::Many(set) => {
                set.remove(named);
                if set.len() > 1 {
                    return false;
                }
                let last = set.drain().next();
                match last {
                    Some(last) => {
                        *self = Refs::One(last);
                        false
                    }
                    None => true,
                }
            }
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &Named> + '_> {
        match self {
            Refs::One(one) => Box::new(std::iter::once(one)),
            Refs::Many(set) => Box::new(set.iter()),
        }
    }
}

struct Map<Key> {
    by_key: HashMap<Key, Refs>,
    /// Each namespace once, shared by the entries.
    namespaces: HashSet<Arc<str>>,
}

impl<Key> Default for Map<Key> {
    fn default() -> Self {
        Map {
            by_key: HashMap::new(),
            namespaces: HashSet::new(),
        }
    }
}

impl<Key: Eq + Hash> Map<Key> {
    fn named<K: Resource>(&mut self, obj: &K) -> Named {
        let meta = obj.meta();
        let namespace = meta.namespace.as_deref().map(|ns| match self.namespaces.get(ns) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<str> = Arc::from(ns);
                self.namespaces.insert(shared.clone());
                shared
            }
        });
        Named {
            namespace,
            name: meta.name.as_deref().unwrap_or_default().into(),
        }
    }

    fn insert(&mut self, key: Key, named: Named) {
        match self.by_key.get_mut(&key) {
            Some(refs) => refs.insert(named),
            None => {
                self.by_key.insert(key, Refs::One(named));
            }
        }
    }
}

/// Objects by keys taken from fields that never change (specs are immutable),
/// so an update never moves an object between keys. An object may sit under
/// several keys.
pub struct Index<K: Resource<DynamicType = ()>, Key> {
    keys_of: fn(&K) -> Vec<Key>,
    map: RwLock<Map<Key>>,
}

impl<K: Resource<DynamicType = ()>, Key: Eq + Hash + Clone> Index<K, Key> {
    /// An empty index of the keys `keys_of` gives each object.
    pub fn new(keys_of: fn(&K) -> Vec<Key>) -> Self {
        Index {
            keys_of,
            map: RwLock::default(),
        }
    }

    /// Keeps the index in step with a change of the store.
    pub fn apply(&self, change: Change<'_, K>) {
        let Ok(mut map) = self.map.write() else { return };
        match change {
            Change::Upsert(obj) => {
                let named = map.named(obj);
                for key in (self.keys_of)(obj) {
                    map.insert(key, named.clone());
                }
            }
            Change::Remove(obj) => {
                let named = map.named(obj);
                for key in (self.keys_of)(obj) {
                    if let Some(refs) = map.by_key.get_mut(&key) {
                        if refs.remove(&named) {
                            map.by_key.remove(&key);
                        }
                    }
                }
            }
            Change::Rebuild(all) => {
                *map = Map::default();
                for obj in all {
                    let named = map.named(obj);
                    for key in (self.keys_of)(obj) {
                        map.insert(key, named.clone());
                    }
                }
                map.by_key.shrink_to_fit();
            }
        }
    }

    /// The references under `key`, whether or not the store holds them yet.
    pub fn refs(&self, key: &Key) -> Vec<ObjectRef<K>> {
        match self.map.read() {
            Ok(map) => map
                .by_key
                .get(key)
                .map(|refs| refs.iter().map(Named::to_ref).collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// The objects under `key` that the store still holds.
    pub fn get(&self, key: &Key, store: &Store<K>) -> Vec<Arc<K>>
    where
        K: Clone,
    {
        self.refs(key).iter().filter_map(|r| store.get(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn cm(ns: &str, name: &str, team: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                labels: Some([("team".to_string(), team.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn team(c: &ConfigMap) -> Vec<String> {
        c.metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| *k == "team")
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn names(index: &Index<ConfigMap, String>, key: &str) -> Vec<String> {
        let mut out: Vec<String> = index
            .refs(&key.to_string())
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn one_many_and_none_under_a_key_as_objects_come_and_go() {
        let index = Index::new(team);
        let (a, b, c) = (cm("t1", "a", "x"), cm("t2", "b", "x"), cm("t1", "c", "y"));
        index.apply(Change::Upsert(&a));
        index.apply(Change::Upsert(&a));
        assert_eq!(names(&index, "x"), ["t1/a"], "an update is not a second entry");
        index.apply(Change::Upsert(&b));
        index.apply(Change::Upsert(&c));
        assert_eq!(names(&index, "x"), ["t1/a", "t2/b"]);
        assert_eq!(names(&index, "y"), ["t1/c"]);
        index.apply(Change::Remove(&a));
        assert_eq!(names(&index, "x"), ["t2/b"]);
        index.apply(Change::Remove(&b));
        assert!(names(&index, "x").is_empty());
        index.apply(Change::Remove(&b));
        assert!(
            !index.map.read().unwrap().by_key.contains_key("x"),
            "an empty key goes"
        );
        index.apply(Change::Rebuild(&[a.clone(), b.clone()]));
        assert_eq!(names(&index, "x"), ["t1/a", "t2/b"]);
        assert!(names(&index, "y").is_empty(), "a rebuild forgets what is gone");
    }

    #[test]
    fn a_namespace_is_held_once_for_all_its_entries() {
        let index = Index::new(team);
        for i in 0..100 {
            index.apply(Change::Upsert(&cm("tenant", &format!("n{i}"), "x")));
        }
        let map = index.map.read().unwrap();
        assert_eq!(map.namespaces.len(), 1);
        let shared = map.namespaces.iter().next().unwrap();
        // The interner's own reference, and one per entry.
        assert_eq!(Arc::strong_count(shared), 101);
    }
}

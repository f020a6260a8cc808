//! The immutable runtime view of one config generation: router and upstream groups.
//!
//! Held in an [`ArcSwap`]; each request loads it once into its context and keeps it to
//! the end, so a reload never changes the rules under a request in flight.

use crate::config::Config;
use crate::router::{Route, Router};
use crate::upstream::{UpstreamError, UpstreamGroup};
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The snapshot shared by the proxy, the admin listener and the background services.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

/// One config generation, ready to serve.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated config.
    pub config: Arc<Config>,
    /// Route lookup.
    pub router: Router,
    /// Upstream groups by name.
    pub upstreams: BTreeMap<String, Arc<UpstreamGroup>>,
    /// 1 for the config loaded at start, +1 per successful reload.
    pub generation: u64,
}

impl Snapshot {
    /// Builds the runtime view of `config`. Groups whose settings equal a group of
    /// `previous` are reused, so they keep their health state.
    pub fn build(
        config: Config,
        previous: Option<&Snapshot>,
        generation: u64,
    ) -> Result<Self, UpstreamError> {
        let mut upstreams = BTreeMap::new();
        for (name, cfg) in &config.upstreams {
            let reused = previous
                .and_then(|p| p.upstreams.get(name))
                .filter(|group| group.config == *cfg)
                .cloned();
            let group = match reused {
                Some(group) => group,
                None => Arc::new(UpstreamGroup::new(name, cfg.clone())?),
            };
            upstreams.insert(name.clone(), group);
        }
        let routes = config
            .routes
            .iter()
            .filter_map(|route| {
                // Validation guarantees the upstream exists.
                let upstream = upstreams.get(&route.upstream)?.clone();
                Some(Route {
                    retry_budget: crate::budget::Budget::new(route.retry_budget.clone()),
                    // A floor of one hedge a second: with a purely relative budget a cold
                    // route could not hedge its first slow requests, whose latencies would
                    // then drag the p95 delay up to the very tail it should cut.
                    hedge_budget: crate::budget::Budget::new(crate::config::RetryBudgetConfig {
                        percent: route.hedge.as_ref().map_or(0.0, |h| h.max_extra_percent),
                        min_per_s: if route.hedge.is_some() { 1.0 } else { 0.0 },
                    }),
                    latency: Default::default(),
                    config: route.clone(),
                    upstream,
                })
            })
            .collect();
        Ok(Self {
            config: Arc::new(config),
            router: Router::new(routes),
            upstreams,
            generation,
        })
    }
}

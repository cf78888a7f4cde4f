//! wafer's integration tests, as one binary (one link step instead of one
//! per file): black-box HTTP tests, the store contract on every store,
//! fault tests, the CLI, and the checks of shipped files (dashboard,
//! load-test scripts). The log test has a binary of its own: it installs a
//! global subscriber.

#[macro_use]
mod contract;

mod audit;
mod cleanup;
mod cli;
mod connections;
mod console;
mod dashboard;
mod gateway;
mod http_api;
mod http_tiered;
mod instances;
mod limits;
mod loadtest_scripts;
mod metrics_move;
mod near_cache;
mod original;
mod original_sdk;
mod phone;
mod secrets;
mod servers;
mod startup;
mod store_cluster;
mod store_embedded;
mod store_postgres;
mod store_tiered;
mod tls;

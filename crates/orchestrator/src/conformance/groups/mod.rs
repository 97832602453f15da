//! One module per check group. Each `run` records its checks in order; a check's name is unique
//! within its group and its id is `<group>.<name>`.

mod accounts;
mod api_version;
mod check_order;
mod deep_links;
mod envelopes;
mod health;
mod oauth;
mod resources;
mod services;
mod signature;

use super::{Group, runner::Recorder, wire::Ctx};

pub async fn run(group: Group, cx: &Ctx, rec: &mut Recorder<'_>) {
    match group {
        Group::Health => health::run(cx, rec).await,
        Group::Services => services::run(cx, rec).await,
        Group::Signature => signature::run(cx, rec).await,
        Group::ApiVersion => api_version::run(cx, rec).await,
        Group::Envelopes => envelopes::run(cx, rec).await,
        Group::CheckOrder => check_order::run(cx, rec).await,
        Group::Accounts => accounts::run(cx, rec).await,
        Group::OAuth => oauth::run(cx, rec).await,
        Group::Resources => resources::run(cx, rec).await,
        Group::DeepLinks => deep_links::run(cx, rec).await,
    }
}

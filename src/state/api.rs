//! The admin API as the writer speaks it: a request (raw path parts and body), its
//! reply, and why a request was refused.
//!
//! There is no HTTP here: the writer says what happened (created, not found, a
//! conflict) and `admin` chooses the status code and renders the JSON. That keeps
//! the writer below `admin` in the import graph.

use bytes::Bytes;
use serde_json::Value;

/// An API request as the writer receives it (raw path parts and body).
#[derive(Debug, Clone)]
pub enum ApiRequest {
    ListPools,
    GetPool(String),
    PutPool(String, Bytes),
    DeletePool(String),
    /// `DELETE /v1/pools/{name}/override`: back to what the config says.
    DeletePoolOverride(String),
    PutMember(String, String, Bytes),
    DeleteMember(String, String),
    DeleteMemberOverride(String, String),
    /// `PUT /v1/pools/{name}/members/{address}/health`, received at the time given
    /// (an `expires_in` counts from it).
    PutMemberHealth(String, String, Bytes, std::time::SystemTime),
    ListZones,
    GetRecords(String),
    PutRRset(String, String, String, Bytes),
    DeleteRRset(String, String, String),
    DeleteRRsetOverride(String, String, String),
    /// `GET /v1/explain`: why a client gets the answer it gets.
    Explain(ExplainQuery),
}

/// The query string of `GET /v1/explain`, as given. An unknown parameter is
/// refused: a misspelt `ecs` must not explain the answer without the subnet.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainQuery {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub client: String,
    pub ecs: Option<String>,
}

/// What a request that succeeded answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A read, or a write that replaced something: the body.
    Ok(Value),
    /// A write that made something new: the body.
    Created(Value),
    /// A write with nothing to show (a delete, a revert to what the files say).
    NoContent,
}

/// Why a request was refused; the message is shown to the API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state in effect.
    #[error("{0}")]
    Conflict(String),
    /// Another server stored a change to the same zone first (etcd): the writer
    /// catches up and plans the request again; answered as a conflict once it
    /// keeps losing.
    #[error("{0}")]
    LostRace(String),
    /// Well-formed, but not acceptable (bad record data, a bad pool).
    #[error("{0}")]
    Unprocessable(String),
    /// The request is not a write where a write was needed.
    #[error("{0}")]
    NotAllowed(String),
    /// The change could not be stored; nothing changed.
    #[error("{0}")]
    Unavailable(String),
    /// The change was stored but the next snapshot could not be built.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError::BadRequest(m.into())
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError::NotFound(m.into())
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        ApiError::Conflict(m.into())
    }
    pub fn unprocessable(m: impl Into<String>) -> Self {
        ApiError::Unprocessable(m.into())
    }
}

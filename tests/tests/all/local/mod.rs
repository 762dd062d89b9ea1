//! hubbub-local end to end: the emulator on port 0 ([`hubbub_tests::local::TestLocal`]), real
//! WebSocket clients (tokio-tungstenite), hyper's HTTP client, and the real
//! aws-sdk-apigatewaymanagement client on @connections.

mod abuse;
mod bad_input;
mod chat;
mod cli;
mod connection;
mod events;
mod faults;
mod http;
mod management;
mod members;
mod messages;
mod people;
mod sessions;
mod web;

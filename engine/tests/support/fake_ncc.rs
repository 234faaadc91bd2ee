//! A stand-in ncc for engine binaries under test: serves ncc's API on `<run>/ncc/ncc.sock`,
//! takes every apply and BGP update as done (changing nothing), and reports an empty plane. The
//! engine answers ha only once ncc holds the plane, so an engine under test needs one.

use std::path::Path;
use std::pin::Pin;

use seesaw_proto::ncc as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;
type Reply<T> = Result<Response<T>, Status>;

struct FakeNcc;

#[tonic::async_trait]
impl pb::ncc_server::Ncc for FakeNcc {
    async fn apply(&self, _: Request<pb::DesiredState>) -> Reply<pb::ApplyReply> {
        Ok(Response::new(pb::ApplyReply::default()))
    }

    /// As an ncc that predates deltas: the engine then sends whole states.
    async fn apply_delta(&self, _: Request<pb::DesiredDelta>) -> Reply<pb::ApplyReply> {
        Err(Status::unimplemented("the test's ncc takes whole states"))
    }

    async fn get_state(&self, _: Request<pb::Empty>) -> Reply<pb::DataplaneState> {
        Ok(Response::new(pb::DataplaneState {
            kind: "fake".to_owned(),
            ..pb::DataplaneState::default()
        }))
    }

    async fn bgp_set(&self, _: Request<pb::BgpRequest>) -> Reply<pb::ApplyReply> {
        Ok(Response::new(pb::ApplyReply::default()))
    }

    async fn bgp_neighbors(&self, _: Request<pb::Empty>) -> Reply<pb::BgpNeighborList> {
        Ok(Response::new(pb::BgpNeighborList::default()))
    }

    type WatchStream = Boxed<pb::NccBoot>;

    async fn watch(&self, _: Request<pb::Empty>) -> Reply<Self::WatchStream> {
        let first = tokio_stream::once(Ok(pb::NccBoot { boot_id: 1 }));
        let open = tokio_stream::pending();
        Ok(Response::new(Box::pin(tokio_stream::StreamExt::chain(
            first, open,
        ))))
    }

    type LeaseStream = Boxed<pb::LeaseReply>;

    async fn lease(
        &self,
        _: Request<tonic::Streaming<pb::LeaseRequest>>,
    ) -> Reply<Self::LeaseStream> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }

    async fn trace(&self, _: Request<pb::TraceRequest>) -> Reply<pb::TraceReply> {
        Err(Status::unimplemented("the test's ncc does not trace"))
    }
}

/// Serves the stand-in on `<run>/ncc/ncc.sock` until the test's runtime ends.
pub(crate) fn serve(run: &Path) {
    let sock = seesaw_common::paths::ncc_socket(run);
    std::fs::create_dir_all(sock.parent().expect("a parent")).expect("ncc run dir");
    let listener = seesaw_common::uds::bind_exclusive(&sock).expect("bind the ncc socket");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::ncc_server::NccServer::new(FakeNcc))
            .serve_with_incoming(seesaw_common::uds::incoming(listener)),
    );
}

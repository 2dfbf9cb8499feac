//! OpenTelemetry: the tracer behind `tracing` spans, W3C trace-context propagation in and
//! out, and the OTLP/HTTP exporter.
//!
//! The tracer provider always exists, so every span has a W3C trace id and `traceparent`
//! flows to outgoing calls even when nothing is exported. With an endpoint, a batch
//! processor exports finished spans from its own thread (the reqwest blocking client: no
//! dependence on the request runtime, no gRPC stack). Spans carry names, routes, methods,
//! status codes and host names only: never headers, bodies, query strings or tokens.

use anyhow::Context as _;
use opentelemetry::{
    Context,
    trace::{TraceContextExt as _, TraceId, TracerProvider as _},
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{SdkTracer, SdkTracerProvider},
};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::registry::LookupSpan;

/// The service name when `OTEL_SERVICE_NAME` is not set.
const SERVICE_NAME: &str = "user-service";

/// The tracer provider; shut down (exporting what is queued) on drop. `None` when the
/// standard `OTEL_SDK_DISABLED=true` turns OpenTelemetry off (no trace ids, no export).
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
    exporting: bool,
}

impl Tracing {
    /// A provider exporting to `endpoint` (an OTLP/HTTP base URL) when given, or to the
    /// standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` when that is set.
    ///
    /// # Errors
    /// When the exporter cannot be built (an invalid endpoint).
    pub fn new(endpoint: Option<&str>) -> anyhow::Result<Self> {
        if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self {
                provider: None,
                exporting: false,
            });
        }
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(SERVICE_NAME);
        }
        let resource = resource
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        let signal_endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .ok()
            .filter(|v| !v.is_empty());
        let exporting = endpoint.is_some() || signal_endpoint.is_some();
        if exporting {
            crate::auth::jwks::install_crypto_provider();
            let mut exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            // The signal-specific variable wins (the exporter reads it itself); the
            // generic base URL gets the standard path appended.
            if let (Some(base), None) = (endpoint, &signal_endpoint) {
                exporter =
                    exporter.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
            }
            let exporter = exporter
                .build()
                .context("building the OTLP span exporter")?;
            builder = builder.with_batch_exporter(exporter);
        }
        Ok(Self {
            provider: Some(builder.build()),
            exporting,
        })
    }

    /// True when spans leave the process.
    #[must_use]
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    #[must_use]
    pub fn layer<S>(&self) -> Option<OpenTelemetryLayer<S, SdkTracer>>
    where
        S: tracing::Subscriber + for<'s> LookupSpan<'s>,
    {
        self.provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer(SERVICE_NAME))
                // Thread ids and names say nothing useful about an async request.
                .with_threads(false)
                // Both run on every poll of every instrumented future. Nothing here reads
                // the OpenTelemetry context as current (propagation asks the `tracing`
                // span, `inject_current`), and busy/idle nanoseconds are not a figure we
                // report: a profile of B had them at 2-3 % of the process.
                .with_context_activation(false)
                .with_tracked_inactivity(false)
        })
    }

    /// Exports every finished span now. Blocks until the exporter answered.
    pub fn flush(&self) {
        if let Some(Err(e)) = self.provider.as_ref().map(SdkTracerProvider::force_flush) {
            tracing::warn!(error = %e, "flushing spans failed");
        }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(p) = &self.provider {
            // Errors here only mean there was nothing left to shut down.
            let _ = p.shutdown();
        }
    }
}

/// W3C trace context (`traceparent`, `tracestate`) in and out.
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// The caller's trace context from the request headers (an empty context without a valid
/// `traceparent`: the span then starts a new trace).
#[must_use]
pub fn extract(headers: &axum::http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Makes `span` a child of the caller's trace (if any) and returns the trace id it ended up
/// in, for logs; `None` when no OpenTelemetry layer is installed (CLI commands, some tests).
pub fn adopt(span: &tracing::Span, headers: &axum::http::HeaderMap) -> Option<TraceId> {
    let parent = extract(headers);
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled or already started: then it has no parent.
        let _ = span.set_parent(parent);
    }
    let id = span.context().span().span_context().trace_id();
    (id != TraceId::INVALID).then_some(id)
}

/// Renames `span`'s OpenTelemetry span. Recording `otel.name` does not do it once the span
/// has started, and [`adopt`] starts it to learn its trace id.
pub fn rename(span: &tracing::Span, name: String) {
    span.context().span().update_name(name);
}

/// Writes the current span's `traceparent` (and `tracestate`) into `headers`: every
/// outgoing request calls this, so the receiver joins our trace.
pub fn inject_current(headers: &mut axum::http::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(headers));
    });
}

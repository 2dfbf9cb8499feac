//! JSON log lines with request correlation. [`CorrelationLayer`] remembers the
//! `request_id` and `trace_id` fields of the span that declares them (the request span of
//! `http::context`); [`JsonLines`] writes one flat JSON object per event and adds those two
//! fields from the nearest such span, so a line logged deep inside a use case still says
//! which request and which trace it belongs to.

use std::fmt;

use serde_json::{Map, Value};
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span,
};
use tracing_subscriber::{
    Layer,
    field::RecordFields,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    layer::Context,
    registry::LookupSpan,
};

/// The correlation fields of a span, stored in its extensions.
#[derive(Clone, Debug, Default)]
struct Correlation {
    request_id: Option<String>,
    trace_id: Option<String>,
}

impl Visit for Correlation {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "request_id" => self.request_id = Some(value.to_owned()),
            "trace_id" => self.trace_id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if matches!(field.name(), "request_id" | "trace_id") {
            // `%value` fields arrive here: their Debug is the Display text.
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// Remembers `request_id` / `trace_id` of spans that declare either field.
pub struct CorrelationLayer;

fn declares(meta: &tracing::Metadata<'_>) -> bool {
    let fields = meta.fields();
    fields.field("request_id").is_some() || fields.field("trace_id").is_some()
}

impl<S> Layer<S> for CorrelationLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if !declares(attrs.metadata()) {
            return;
        }
        let mut c = Correlation::default();
        attrs.record(&mut c);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(c);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(c) = span.extensions_mut().get_mut::<Correlation>()
        {
            values.record(c);
        }
    }
}

/// One JSON object per line: `timestamp`, `level`, `target`, the event's fields
/// (`message` among them), then `request_id` and `trace_id` of the enclosing request.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut map = Map::new();
        map.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        map.insert("level".into(), Value::String(meta.level().as_str().into()));
        map.insert("target".into(), Value::String(meta.target().into()));
        event.record(&mut JsonVisitor(&mut map));
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let ext = span.extensions();
                if let Some(c) = ext.get::<Correlation>() {
                    for (key, value) in [("request_id", &c.request_id), ("trace_id", &c.trace_id)] {
                        if let Some(v) = value {
                            map.entry(key).or_insert_with(|| Value::String(v.clone()));
                        }
                    }
                    break;
                }
            }
        }
        let line = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// The span-field formatter of the JSON layers: nothing. The fmt layer formats every new
/// span's fields into a string for its event formatter, and [`JsonLines`] never prints
/// them (a line carries its own fields and the request's two ids), so the default
/// formatter's work would be thrown away on each span.
pub struct NoSpanFields;

impl<'w> FormatFields<'w> for NoSpanFields {
    fn format_fields<R: RecordFields>(&self, _: Writer<'w>, _: R) -> fmt::Result {
        Ok(())
    }
}

/// Event fields into the JSON object: numbers and booleans stay typed.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

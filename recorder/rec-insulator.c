/* rec-insulator.c — a pass-through element that never returns an error
 * upstream. Between a tee and one of its branches it keeps a failing branch
 * (a relay into a PeerConnection being torn down, a muxer refusing caps) from
 * returning FLUSHING / NOT_NEGOTIATED / ERROR to the tee, which would pass it
 * upstream and stop the sender's stream for every branch — the recording
 * included. No thread: buffers go straight through. */
#include "config.h"
#include "recorder-private.h"

struct _RecInsulator {
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  GstFlowReturn last;   /* last flow return reported, to log changes only */
  char *sid;            /* session id, for the log */
};

G_DEFINE_TYPE (RecInsulator, rec_insulator, GST_TYPE_ELEMENT)

static GstStaticPadTemplate sink_templ = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_templ = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstFlowReturn
rec_insulator_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  RecInsulator *self = (RecInsulator *) parent;
  GstFlowReturn ret = gst_pad_push (self->srcpad, buf);
  if (ret != self->last)
    {
      if (ret != GST_FLOW_OK)
        GST_CAT_INFO_OBJECT (rec_debug, self, "[%s] branch returned %s; not passed upstream",
                             self->sid ? self->sid : "-", gst_flow_get_name (ret));
      self->last = ret;
    }
  return GST_FLOW_OK;
}

static gboolean
rec_insulator_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  RecInsulator *self = (RecInsulator *) parent;
  /* Sticky events stay on srcpad and are sent again with the next buffer. */
  gst_pad_push_event (self->srcpad, event);
  return TRUE;
}

void
rec_passthrough_pads (GstElement *element, GstPadChainFunction chain, GstPadEventFunction event,
                      GstPad **sinkpad, GstPad **srcpad)
{
  GstElementClass *klass = GST_ELEMENT_GET_CLASS (element);

  *sinkpad = gst_pad_new_from_template (gst_element_class_get_pad_template (klass, "sink"), "sink");
  gst_pad_set_chain_function (*sinkpad, chain);
  if (event != NULL)
    gst_pad_set_event_function (*sinkpad, event);
  GST_PAD_SET_PROXY_CAPS (*sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION (*sinkpad);
  gst_element_add_pad (element, *sinkpad);
  *srcpad = gst_pad_new_from_template (gst_element_class_get_pad_template (klass, "src"), "src");
  GST_PAD_SET_PROXY_CAPS (*srcpad);
  gst_element_add_pad (element, *srcpad);
}

static void
rec_insulator_init (RecInsulator *self)
{
  rec_passthrough_pads (GST_ELEMENT (self), rec_insulator_chain, rec_insulator_sink_event, &self->sinkpad,
                        &self->srcpad);
  self->last = GST_FLOW_OK;
}

static void
rec_insulator_finalize (GObject *object)
{
  g_free (((RecInsulator *) object)->sid);
  G_OBJECT_CLASS (rec_insulator_parent_class)->finalize (object);
}

static void
rec_insulator_class_init (RecInsulatorClass *klass)
{
  GstElementClass *ek = GST_ELEMENT_CLASS (klass);
  G_OBJECT_CLASS (klass)->finalize = rec_insulator_finalize;
  gst_element_class_add_static_pad_template (ek, &sink_templ);
  gst_element_class_add_static_pad_template (ek, &src_templ);
  gst_element_class_set_static_metadata (ek, "Testigo branch insulator", "Generic",
                                         "Passes data through; never returns a flow error upstream",
                                         "Testigo");
}

GstElement *
rec_insulator_new (const char *session_id)
{
  RecInsulator *self = g_object_new (REC_TYPE_INSULATOR, NULL);
  self->sid = g_strdup (session_id);
  return GST_ELEMENT (self);
}

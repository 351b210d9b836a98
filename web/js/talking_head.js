// Talking Head Studio: small front-end helpers, no build step.
// - Write Video: its result is an mp4 that ComfyUI plays in the node (ui.images + animated);
//   here the preview loops muted-by-default and shows the file name.
// - Blend: the node shows the mask it used over the first frame (ui.images); when a blend
//   widget changes, the preview is marked stale until the next run, which only re-runs Blend.
import { app } from "../../scripts/app.js";

const BLEND = "THS_Blend";
const WRITE = "THS_WriteVideo";
const BLEND_WIDGETS = new Set(["mode", "region", "alpha", "feather", "color_match", "crop_edge"]);

function markStale(node, stale) {
  node.__thsStale = stale;
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "talking_head_studio.ui",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === BLEND) {
      const onCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        const r = onCreated?.apply(this, arguments);
        for (const w of this.widgets ?? []) {
          if (!BLEND_WIDGETS.has(w.name)) continue;
          const cb = w.callback;
          w.callback = (...args) => {
            markStale(this, true);
            return cb?.apply(w, args);
          };
        }
        return r;
      };
      const onExecuted = nodeType.prototype.onExecuted;
      nodeType.prototype.onExecuted = function (output) {
        markStale(this, false);
        return onExecuted?.apply(this, arguments);
      };
      const onDraw = nodeType.prototype.onDrawForeground;
      nodeType.prototype.onDrawForeground = function (ctx) {
        const r = onDraw?.apply(this, arguments);
        if (this.__thsStale) {
          ctx.save();
          ctx.fillStyle = "rgba(255,180,0,0.9)";
          ctx.font = "12px sans-serif";
          ctx.fillText("mask preview out of date: run to refresh (only Blend re-runs)", 8, this.size[1] - 8);
          ctx.restore();
        }
        return r;
      };
    }
    if (nodeData.name === WRITE) {
      const onExecuted = nodeType.prototype.onExecuted;
      nodeType.prototype.onExecuted = function (output) {
        const r = onExecuted?.apply(this, arguments);
        const file = output?.images?.[0]?.filename;
        if (file) this.title = `${nodeData.display_name ?? "Write Video"} · ${file}`;
        requestAnimationFrame(() => {
          for (const el of this.domElements ?? document.querySelectorAll("video")) {
            if (el instanceof HTMLVideoElement && el.src.includes(encodeURIComponent(file ?? ""))) {
              el.loop = true;
              el.controls = true;
            }
          }
        });
        return r;
      };
    }
  },
});

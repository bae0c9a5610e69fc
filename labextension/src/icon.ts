import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A scan: axes and a measured peak. The `jp-icon3` class lets the theme recolour
 * the strokes and the fill; `fill="none"` stays on the group, which has no class.
 */
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">
  <g fill="none" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">
    <path class="jp-icon3" stroke="#616161" d="M3 3v18h18"/>
    <path class="jp-icon3" stroke="#616161" d="M5.5 17.5h2.5l2-1.5 2-7 1.5-4 1.5 4 2 7 1.5 1.5h2"/>
  </g>
  <circle class="jp-icon3" fill="#616161" cx="13.5" cy="4.5" r="1.5"/>
</svg>`;

export const scansIcon = new LabIcon({ name: 'scandeck:scans', svgstr: svg });

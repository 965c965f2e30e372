/** The report page's style sheet, embedded in the page. */
export const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f6f6f4;color:#1b1b1b;line-height:1.45}
main{max-width:1220px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:1.6em;margin:0.4em 0 0.1em}h2{font-size:1.25em;margin:1.6em 0 0.5em;border-bottom:2px solid #ddd;padding-bottom:3px}
.sub{color:#555;margin:0 0 1em}
table{border-collapse:collapse;background:#fff;margin:0.4em 0 0.8em;font-size:0.92em}
th,td{border:1px solid #d4d4d4;padding:4px 9px;text-align:left;vertical-align:top}thead th{background:#eee}tbody th{background:#fafafa;font-weight:600}
td.n,.num td{font-variant-numeric:tabular-nums}
.warn{border:3px solid #c0001a;background:#ffe9e9;color:#7a0010;padding:12px 16px;margin:1em 0;font-size:1.05em}
.warn strong{font-size:1.15em}
.note{border-left:4px solid #e0a800;background:#fff8e0;padding:8px 12px;margin:0.6em 0}
.oracle{color:#7a4b00}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:8px}
figure svg{max-width:100%;height:auto;display:block;margin:0 auto}
figure.missing{color:#555;font-style:italic;display:flex;align-items:center}
figcaption{font-size:0.86em;color:#444;margin-top:4px}
.file{color:#888;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.9em}
img.grid{image-rendering:pixelated;width:100%;max-width:500px;display:block;border:1px solid #ccc}
img.wide{image-rendering:pixelated;width:100%;max-width:900px;display:block;border:1px solid #ccc}
.conf td,.conf th{text-align:center}
.cfg{columns:3 300px;font-size:0.9em}.cfg div{break-inside:avoid;padding:1px 0}.cfg code{color:#333}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:0.8em;max-height:520px}
code{font-family:ui-monospace,Menlo,Consolas,monospace}
`;

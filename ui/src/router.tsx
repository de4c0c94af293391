// History-API routing: links change the URL without a reload; the server answers index.html for
// every page's path (src/kiln/http/static_site.cpp, is_ui_route).
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export function navigate(to: string): void {
  history.pushState(null, '', to);
  window.dispatchEvent(new Event('kiln-navigate'));
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const f = () => setPath(location.pathname);
    window.addEventListener('popstate', f);
    window.addEventListener('kiln-navigate', f);
    return () => {
      window.removeEventListener('popstate', f);
      window.removeEventListener('kiln-navigate', f);
    };
  }, []);
  return path;
}

export function Link(props: { href: string; class?: string; children: ComponentChildren }) {
  return (
    <a
      href={props.href}
      class={props.class}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

/**
 * Inline SVG icons (24×24, stroked with currentColor): emoji and symbol fonts differ per system and
 * are missing on many servers, these look the same everywhere.
 */
const PATHS = {
  bolt: 'M13 2 4 14h7l-1 8 9-12h-7z',
  link: 'M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1',
  plus: 'M12 5v14M5 12h14',
  minus: 'M5 12h14',
  clock: 'M12 7v5l3 2M21 12a9 9 0 1 1-18 0 9 9 0 0 1 18 0z',
  undo: 'M9 14 4 9l5-5M4 9h11a5 5 0 0 1 0 10h-3',
  out: 'M7 17 17 7M8 7h9v9',
  in: 'M17 7 7 17M16 17H7V8',
  key: 'M15 7a3 3 0 1 1-3 3M12 10l-8 8v3h3l1-1v-2h2v-2h2l1.5-1.5M15 7a3 3 0 0 1 3 3',
  slash: 'M6 6l12 12M9 3.5 3.5 9M20.5 15 15 20.5',
  check: 'M5 12.5 10 17l9-10',
  coins:
    'M9 8c0 1.7 2.7 3 6 3s6-1.3 6-3-2.7-3-6-3-6 1.3-6 3zM9 8v4c0 1.7 2.7 3 6 3s6-1.3 6-3V8M3 12c0 1.7 2.7 3 6 3M3 12V8c0-1.5 2-2.7 5-3M3 12v4c0 1.7 2.7 3 6 3',
  cube: 'M12 3 4 7.5v9L12 21l8-4.5v-9zM4 7.5l8 4.5 8-4.5M12 12v9',
  lock: 'M6 11h12v10H6zM8.5 11V8a3.5 3.5 0 0 1 7 0v3',
  shield: 'M12 3 5 6v5c0 4.5 3 8.5 7 10 4-1.5 7-5.5 7-10V6z',
  alert: 'M12 4 2.5 20h19zM12 10v4.5M12 17.5v.5',
  dot: 'M12 11.5a.5.5 0 1 0 0 1 .5.5 0 0 0 0-1z',
  image: 'M4 5h16v14H4zM4 16l5-5 4 4 2-2 5 5M15.5 9.5a1 1 0 1 0 0-.01',
} as const;

export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 16 }: { name: IconName; size?: number }) {
  return (
    <svg
      viewBox="0 0 24 24"
      width={size}
      height={size}
      fill="none"
      stroke="currentColor"
      stroke-width={2}
      stroke-linecap="round"
      stroke-linejoin="round"
      aria-hidden="true"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}

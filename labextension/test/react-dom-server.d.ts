// The one function of react-dom/server the tests use (the package ships no types and
// @types/react-dom is not a dependency of the panel).
declare module 'react-dom/server' {
  import { ReactElement } from 'react';
  export function renderToStaticMarkup(element: ReactElement): string;
}

import { useEffect, useState } from 'react';

import { ScansModel } from './model';

/** Re-render the calling component whenever the model changes. */
export function useModel(model: ScansModel): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const onChange = () => setTick(tick => tick + 1);
    model.changed.connect(onChange);
    return () => {
      model.changed.disconnect(onChange);
    };
  }, [model]);
}

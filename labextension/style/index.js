import './base.css';
import './standing.css';
